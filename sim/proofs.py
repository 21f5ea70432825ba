"""The properties ``nfloop prove`` proves about the learner core's arithmetic and the UART receiver.

Each arithmetic unit of the core is checked against its model function
(:mod:`nfloop.model.fixed`) written again here with exact arithmetic:
Amaranth's operators widen their results, so nothing in a specification
wraps, and saturation is a comparison with the format's bounds, not the
gateware's sign-bit test. Every input is free (``AnySeq``), so a proof covers
all inputs, not the ones a test happens to draw; the few ``Assume``\\ s say
only what the core guarantees (a product is no larger than an error code
times an input code, a layer number exists). Pipelined units are compared with their
inputs delayed by the unit's ``latency``; k-induction over one more cycle
than that proves them for every cycle from every state.

The UART receiver is driven by a transmitter that sends frames with any
bytes, gaps and bad stop bits (a framing error), and checked to a bound.
"""

from __future__ import annotations

from amaranth.asserts import AnySeq
from amaranth.hdl import Assert, Assume, Cat, ClockDomain, Const, Elaboratable, Module, Mux, Signal, signed, unsigned

from ..hdl.activation import WindowUnit
from ..hdl.error import ErrorUnit
from ..hdl.layout import CoreLayout
from ..hdl.uart import UARTRx
from ..hdl.update import UpdateUnit
from ..hdl.writeback import ColumnWriteback, RowWriteback
from ..model.config import ActivationKind, LearnerConfig, QFormat, Rounding
from ..model.fixed import MIX, SITE_LEAK, SITE_MOMENTUM, SITE_UPDATE, LayerPlan
from .formal import Property

__all__ = ["core_properties", "uart_properties", "UNITS", "Harness", "free"]


# -- the model's functions, exactly -------------------------------------------------------------

def clamp(value, fmt: QFormat):
    """:func:`nfloop.model.fixed.saturate`: the nearer bound when ``value`` is outside ``fmt``."""
    return Mux(value > fmt.max_code, fmt.max_code, Mux(value < fmt.min_code, fmt.min_code, value))


def rounded(value, shift: int, rounding: Rounding, rand=None):
    """:func:`nfloop.model.fixed.shift_round`, on a value that cannot overflow."""
    if shift <= 0:
        return value * (1 << -shift)
    match rounding:
        case Rounding.FLOOR:
            return value >> shift
        case Rounding.HALF_UP:
            return (value + (1 << (shift - 1))) >> shift
        case Rounding.STOCHASTIC:
            return (value + rand) >> shift
        case _:
            raise ValueError(f"no rounding mode {rounding!r}")


def activated(z, plan: LayerPlan, rounding: Rounding):
    """:func:`nfloop.model.fixed.activate`."""
    match plan.kind:
        case ActivationKind.IDENTITY:
            return z
        case ActivationKind.RELU:
            return Mux(z > 0, z, 0)
        case ActivationKind.LEAKY_RELU:
            return Mux(z >= 0, z, rounded(z, plan.slope_shift, rounding))
        case ActivationKind.HARDTANH:
            return Mux(z < plan.clip_lo, plan.clip_lo, Mux(z > plan.clip_hi, plan.clip_hi, z))
        case ActivationKind.SIGN | ActivationKind.STAIRCASE:
            above = sum(Mux(z > c, 1, 0) for c in plan.thresholds)
            below = sum(Mux(z < c, 1, 0) for c in plan.thresholds)
            return (above - below) * plan.step_code
        case kind:
            raise ValueError(f"no activation {kind!r}")


def window_passes(z, plan: LayerPlan):
    """Where :func:`nfloop.model.fixed.apply_window` passes ``g`` unchanged."""
    if plan.derivative:
        match plan.kind:
            case ActivationKind.IDENTITY:
                return Const(1)
            case ActivationKind.RELU | ActivationKind.LEAKY_RELU:
                return z > 0
            case ActivationKind.HARDTANH:
                return (z > plan.clip_lo) & (z < plan.clip_hi)
            case ActivationKind.SIGN | ActivationKind.STAIRCASE:
                return Const(0)
            case kind:
                raise ValueError(f"no activation {kind!r}")
    inside = Const(1)
    if plan.window_lo is not None:
        inside = inside & (z >= plan.window_lo)
    if plan.window_hi is not None:
        inside = inside & (z <= plan.window_hi)
    return inside


def windowed(g, passes, plan: LayerPlan, rounding: Rounding):
    """:func:`nfloop.model.fixed.apply_window` given where it passes ``g``."""
    other = 0
    if plan.derivative and plan.kind is ActivationKind.LEAKY_RELU:
        other = rounded(g, plan.slope_shift, rounding)
    return Mux(passes, g, other)


# -- harness pieces ---------------------------------------------------------------------------------

class Harness(Elaboratable):
    """A module with a reset-less ``sync`` domain (a free reset would only restart the pipelines), a
    counter of the cycles so far, and delayed copies of free inputs."""

    def __init__(self, build):
        self._build = build
        self._domain = ClockDomain("sync", reset_less=True)

    @property
    def ports(self) -> list:
        """The clock: a port, or Amaranth would tie it to 0 and no register would ever change."""
        return [self._domain.clk]

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = self._domain
        self._build(self, m)
        return m

    @staticmethod
    def history(m: Module, value, cycles: int, name: str) -> list:
        """``[value, value one cycle ago, ..., value cycles ago]``."""
        out = [value]
        for k in range(1, cycles + 1):
            late = Signal.like(value, name=f"{name}_{k}")
            m.d.sync += late.eq(out[-1])
            out.append(late)
        return out

    @staticmethod
    def after(m: Module, cycles: int):
        """True once ``cycles`` cycles have passed: before, a pipeline still holds its initial state."""
        count = Signal(range(cycles + 1))
        with m.If(count < cycles):
            m.d.sync += count.eq(count + 1)
        return count == cycles


def free(m: Module, shape, name: str) -> Signal:
    """A signal that takes any value in every cycle."""
    value = Signal(shape, name=name)
    m.d.comb += value.eq(AnySeq(shape))
    return value


# -- the core's units -------------------------------------------------------------------------------

#: The units a property is about; a test swaps one for a broken copy to see its proof fail.
UNITS = {"error": ErrorUnit, "window": WindowUnit, "row": RowWriteback, "column": ColumnWriteback,
         "update": UpdateUnit}


def _error_property(config: LearnerConfig, units: dict) -> Property:
    f = config.formats

    def build(h, m):
        m.submodules.dut = dut = units["error"](config)
        y, yhat = free(m, f.activation.shape, "y"), free(m, f.activation.shape, "yhat")
        m.d.comb += [dut.y.eq(y), dut.yhat.eq(yhat)]
        spec = clamp(rounded(y - yhat, f.activation.frac - f.error.frac, config.forward_rounding), f.error)
        m.d.comb += Assert(dut.e == spec)
    return Property("error unit", "e = sat(round(y - yhat))", lambda: Harness(build), "prove", 1)


def _window_property(config: LearnerConfig, layer: int, units: dict) -> Property:
    f, plan = config.formats, LayerPlan.build(config, layer)

    def build(h, m):
        m.submodules.dut = dut = units["window"](config, layer)
        g, z = free(m, f.error.shape, "g"), free(m, f.activation.shape, "z")
        m.d.comb += [dut.g.eq(g), dut.z.eq(z)]
        m.d.comb += Assert(dut.delta == windowed(g, window_passes(z, plan), plan, config.forward_rounding))
    return Property(f"window unit, layer {layer}", "delta = g windowed at z", lambda: Harness(build), "prove", 1)


def _row_property(config: LearnerConfig, layer: int, width: int, units: dict) -> Property:
    """The forward writeback: z = sat(round(sum)), a = sigma(z), its window bit; for the output layer the
    error and its delta too."""
    f, plan, rnd = config.formats, LayerPlan.build(config, layer), config.forward_rounding
    output = layer == len(config.layers) - 1

    def build(h, m):
        m.submodules.dut = dut = units["row"](config, layer, width)
        total = free(m, signed(width), "sum")
        m.d.comb += dut.sum.eq(total)
        sums = h.history(m, total, dut.latency, "sum")
        ready = h.after(m, dut.latency)
        z = clamp(rounded(sums[2], plan.z_shift, rnd), f.activation)
        z_sig = Signal(f.activation.shape, name="z_spec")
        m.d.comb += z_sig.eq(z)
        if not output:
            with m.If(ready):
                m.d.comb += [Assert(dut.a == activated(z_sig, plan, rnd)),
                             Assert(dut.bit == window_passes(z_sig, plan))]
        else:
            # the output layer keeps a and its window bit a cycle longer, beside the error
            y = free(m, f.activation.shape, "y")
            m.d.comb += dut.y.eq(y)
            ys = h.history(m, y, 1, "y")
            a_late = Signal(f.activation.shape, name="a_spec_late")
            z_late = Signal(f.activation.shape, name="z_spec_late")
            m.d.sync += [a_late.eq(activated(z_sig, plan, rnd)), z_late.eq(z_sig)]
            e = Signal(f.error.shape, name="e_spec")
            m.d.comb += e.eq(clamp(rounded(ys[1] - a_late, f.activation.frac - f.error.frac, rnd), f.error))
            with m.If(ready):
                passes = window_passes(z_late, plan)
                m.d.comb += [Assert(dut.a == a_late), Assert(dut.e == e), Assert(dut.bit == passes),
                             Assert(dut.delta == windowed(e, passes, plan, rnd))]
    what = "a = sigma(sat(round(sum))), " + ("e, delta" if output else "window bit")
    return Property(f"row writeback, layer {layer}", what, lambda: Harness(build), "prove",
                    RowWriteback.latency_of(config, layer) + 2)


def _column_property(config: LearnerConfig, layer: int, width: int, units: dict) -> Property:
    """The backward writeback into ``layer``: delta = sat(round(sum)) windowed by the unit's bit."""
    f, plan, rnd = config.formats, LayerPlan.build(config, layer), config.forward_rounding

    def build(h, m):
        m.submodules.dut = dut = units["column"](config, layer, width)
        total, bit = free(m, signed(width), "sum"), free(m, 1, "bit")
        m.d.comb += [dut.sum.eq(total), dut.bit.eq(bit)]
        sums = h.history(m, total, dut.latency, "sum")
        g = Signal(f.error.shape, name="g_spec")
        m.d.comb += g.eq(clamp(rounded(sums[dut.latency], plan.back_shift, rnd), f.error))
        with m.If(h.after(m, dut.latency)):
            m.d.comb += Assert(dut.delta == windowed(g, bit, plan, rnd))
    return Property(f"column writeback, layer {layer}", "delta = sat(round(sum)) windowed", lambda: Harness(build),
                    "prove", ColumnWriteback.LATENCY + 2)


def _largest_product(config: LearnerConfig, plan: LayerPlan) -> int:
    """The largest magnitude of an error code times one of the layer's input codes or its bias 1.0."""
    fmt = config.input_format(plan.index)
    return (1 << (config.formats.error.bits - 1)) * max(1 << (fmt.bits - 1), plan.one_code)


def _update_property(config: LearnerConfig, units: dict) -> Property:
    """One weight's update for every layer: :meth:`nfloop.model.fixed.FixedLearner.step` and its
    ``_apply_update``, with the momentum, leak and batch sum the config has."""
    acc, rnd = config.formats.weight_acc, config.rounding
    plans = [LayerPlan.build(config, l) for l in range(len(config.layers))]
    lay = CoreLayout(config, 1)
    product_shape = signed(lay.product_width)

    def build(h, m):
        m.submodules.dut = dut = units["update"](config, product_shape)
        latency = dut.latency
        product = free(m, product_shape, "product")
        layer = free(m, dut.layer.shape(), "layer")
        m.d.comb += Assume(layer < len(plans))
        # any product of an error code and an input code (the bias input 1.0 included): a range, which
        # the solver takes far more easily than a multiplication, and which holds every such product
        with m.Switch(layer):
            for p in plans:
                with m.Case(p.index):
                    biggest = _largest_product(config, p)
                    m.d.comb += Assume((product >= -biggest) & (product <= biggest))
        inputs = {"product": product, "layer": layer, "w": free(m, acc.shape, "w")}
        m.d.comb += [dut.product.eq(inputs["product"]), dut.layer.eq(layer), dut.w.eq(inputs["w"])]
        if dut.momentum:
            inputs["v"] = free(m, acc.shape, "v")
            m.d.comb += dut.v.eq(inputs["v"])
        if dut.batched:
            inputs["s"], inputs["apply"] = free(m, acc.shape, "s"), free(m, 1, "apply")
            m.d.comb += [dut.s.eq(inputs["s"]), dut.apply.eq(inputs["apply"])]
        if dut.stochastic:
            inputs["mix"], inputs["lfsr"] = free(m, unsigned(32), "mix"), free(m, unsigned(32), "lfsr")
            m.d.comb += [dut.mix.eq(inputs["mix"]), dut.lfsr.eq(inputs["lfsr"])]
        was = {}
        for name, value in inputs.items():
            held = Signal(product_shape if name == "product" else value.shape(), name=f"{name}_in")
            m.d.comb += held.eq(value)
            was[name] = h.history(m, held, latency, name)[latency]

        def rand(site, bits):
            if not dut.stochastic or bits <= 0:
                return None
            return ((was["mix"] + ((site * MIX) & 0xFFFFFFFF))[:32] ^ was["lfsr"])[32 - bits:32]

        ready = h.after(m, latency)
        with m.Switch(was["layer"]):
            for p in plans:
                with m.Case(p.index):
                    u = rounded(was["product"], p.update_shift, rnd, rand(SITE_UPDATE, p.update_shift))
                    u = u if p.update_fits else clamp(u, acc)
                    apply = was["apply"] if dut.batched else Const(1)
                    change = clamp(was["s"] + u, acc) if dut.batched else u
                    if dut.batched:
                        with m.If(ready):
                            m.d.comb += Assert(dut.s_new == Mux(apply, 0, change))
                    if p.momentum_shift:
                        v = clamp(was["v"] - rounded(was["v"], p.momentum_shift, rnd,
                                                     rand(SITE_MOMENTUM, p.momentum_shift)) + change, acc)
                        v_sig = Signal(acc.shape, name=f"v_spec_{p.index}")
                        m.d.comb += v_sig.eq(v)
                        change = v_sig
                        with m.If(ready):
                            m.d.comb += Assert(dut.v_new == Mux(apply, v_sig, was["v"]))
                    elif dut.momentum:
                        with m.If(ready):
                            m.d.comb += Assert(dut.v_new == was["v"])
                    if p.leak_shift:
                        change = change - rounded(was["w"], p.leak_shift, rnd, rand(SITE_LEAK, p.leak_shift))
                    with m.If(ready):
                        m.d.comb += Assert(dut.w_new == Mux(apply, clamp(was["w"] + change, acc), was["w"]))
    extras = [name for name, has in (("momentum", any(p.momentum_shift for p in plans)),
                                     ("leak", any(p.leak_shift for p in plans)),
                                     ("batch sum", config.batch_size > 1)) if has]
    what = "w_new = sat(w + round(A delta a))" + (f", {', '.join(extras)}" if extras else "")
    return Property("update unit", what, lambda: Harness(build), "prove", UpdateUnit.latency_of(config) + 2)


def core_properties(config: LearnerConfig, units: dict | None = None) -> list[Property]:
    """Every arithmetic unit of the core for ``config``: the error unit, each layer's window, forward
    and backward writeback, and the update unit. ``units`` replaces some of :data:`UNITS`."""
    units = UNITS | (units or {})
    width = CoreLayout(config, 1).accumulator_width
    layers = range(len(config.layers))
    return [_error_property(config, units),
            *(_window_property(config, l, units) for l in layers),
            *(_row_property(config, l, width, units) for l in layers),
            *(_column_property(config, l, width, units) for l in layers if l < len(config.layers) - 1),
            _update_property(config, units)]


# -- the UART receiver ---------------------------------------------------------------------------

def _uart_property(period: int, frames: int, receiver) -> Property:
    """A transmitter sends ``frames`` frames of any bytes, with any gaps, some with a bad stop bit
    (followed by a bit of idle line, as any UART leaves after a frame). Every byte the receiver emits
    is the byte of the last good frame, emitted once; and a good frame's byte always comes out,
    before the next frame's stop bit: so after a framing error the next good frame is received."""

    def build(h, m):
        m.submodules.dut = dut = receiver(period)
        m.d.comb += dut.o_stream.ready.eq(1)
        # the transmitter: a frame is a start bit, 8 data bits LSB first and a stop bit, each `period`
        # cycles; `frame` shifts out through bit 0, `bits` counts what is left of it
        frame, bits, timer = Signal(10), Signal(range(11)), Signal(range(period))
        idle_owed = Signal(range(period + 1))        # after a bad stop bit, a bit of idle line
        sent, good = Signal(8), Signal()
        go, data, bad = free(m, 1, "go"), free(m, 8, "data"), free(m, 1, "bad")
        m.d.comb += dut.rx.eq(Mux(bits != 0, frame[0], 1))
        # the byte the receiver owes: the good frame now in (or past) its stop bit, until emitted
        pending, expected = Signal(), Signal(8)
        frames_sent = Signal(range(frames + 2))
        stop_begins = (bits == 2) & (timer == 0)
        with m.If(bits == 0):
            with m.If(idle_owed > 0):
                m.d.sync += idle_owed.eq(idle_owed - 1)
            with m.Elif(go):
                m.d.sync += [frame.eq(Cat(Const(0, 1), data, ~bad)), bits.eq(10), timer.eq(period - 1),
                             sent.eq(data), good.eq(~bad)]
        with m.Else():
            m.d.sync += timer.eq(timer - 1)
            with m.If(timer == 0):
                m.d.sync += [frame.eq(frame >> 1), bits.eq(bits - 1), timer.eq(period - 1)]
                with m.If(bits == 1):
                    m.d.sync += [idle_owed.eq(Mux(good, 0, period)), frames_sent.eq(frames_sent + 1)]
        m.d.comb += Assume(frames_sent <= frames)
        emitted = dut.o_stream.valid
        with m.If(emitted):
            m.d.comb += [Assert(pending), Assert(dut.o_stream.payload == expected)]
        with m.If(stop_begins):
            # the last good frame's byte is out before the next frame's stop bit
            m.d.comb += Assert(~pending | emitted)
            m.d.sync += [pending.eq(good), expected.eq(sent)]
        with m.Elif(emitted):
            m.d.sync += pending.eq(0)
    depth = frames * 10 * period + 2 * period + 8
    return Property(f"UART receiver, {period} cycles a bit", "each good frame's byte, once; framing errors dropped",
                    lambda: Harness(build), "bmc", depth)


def uart_properties(period: int = 4, frames: int = 2, receiver=UARTRx) -> list[Property]:
    """The receiver at ``period`` cycles a bit (the virtual board's 4), over ``frames`` frames."""
    return [_uart_property(period, frames, receiver)]
