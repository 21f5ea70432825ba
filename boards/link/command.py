"""The protocol engine's command state machine: checks a received frame, runs it, answers it."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ...hdl.core import state_port_signature, weight_port_signature
from ...model.fixed import GAIN_WORDS, LayerPlan
from ..geometry import MAX_READ_WEIGHTS, BoardGeometry
from ..protocol import HEADERS, MAX_PAYLOAD, STATS_ANSWER, TRAIN_HEADER, Bank, Command, Status
from .ports import BUFFER_LATENCY, buffer_read_signature, data_port_signature
from .receiver import FRAME
from .sender import RESPONSE

__all__ = ["CommandUnit"]


def fits(value, bits: int):
    """``value`` (signed, as wide as its container) is a code of a ``bits``-bit format: its top bits agree."""
    top = Value.cast(value)[bits - 1:]
    return (top == 0) | (top == (1 << len(top)) - 1)


def below(value, limit: int):
    """``value`` (unsigned) < ``limit``, comparing only the bits ``limit`` needs."""
    value = Value.cast(value)
    bits = (limit - 1).bit_length()
    if bits >= len(value):
        return value < limit
    return (value[bits:] == 0) & (value[:bits] < limit)


def sign_extend(value, bits: int):
    """``value`` (signed, at most ``bits`` wide) as ``bits`` bits."""
    value = Value.cast(value)
    return Cat(value, value[-1].replicate(bits - len(value)))


def header_bytes(command: Command) -> int:
    return HEADERS[command].size // 8 if command in HEADERS else 0


class CommandUnit(wiring.Component):
    """Checks each received frame, runs its command and answers it (``docs/protocol.md``).

    A frame is checked over several registered cycles, in the protocol's
    order: the command, the length its header fields call for, the fields'
    ranges, then every value in the payload, read from the frame buffer a
    byte each ``BUFFER_LATENCY + 1`` cycles. Only a frame that passed every check acts, on a
    second pass over its values, so a rejected frame changes nothing.

    Nothing multiplies. The one product a check needs, LOAD_DATA's count of
    memory words (``count * record_words``), is built by shifting and adding
    over the constant's bits; LOAD_DATA's and LOAD_ORDER's addresses step by
    constants (the data set is stored a column at a time, see
    :class:`~nfloop.boards.geometry.BoardGeometry`), and a run of weights is
    checked by walking it. Decisions on long paths are registers, a cycle
    behind what they decide on; ``fetched`` says when they are current.
    Answers go out a byte at a time: IDENTIFY from a constant, STATS from the
    live counters, READ_WEIGHTS from the core's weight port (a read waits for
    ``rvalid``), INFER from the core's results.

    Parameters
    ----------
    geometry : BoardGeometry
    core : LearnerCore
        Only its ``layout``, ``sample_layout`` and ``result_layout`` are used.
    sum_bits : int
        Width of the error sum (:attr:`ErrorStats.sum_bits`).

    Members
    -------
    frames : In(stream of :data:`FRAME`)
        From the receiver; the fields stay as they are until ``listen`` lets the next frame in.
    listen : Out(1)
        No request is being worked on.
    buffer : frame buffer read port
        ``data`` is the byte at the previous cycle's ``addr``.
    head, answer : Out(stream)
        The response and its payload bytes, to the sender.
    sample, result : the core's streams, for INFER.
    weights : the core's weight port (its ``bank`` selects weights, momentum or batch sums).
    state : the core's state port, for SET_STATE.
    memory : data memory port, for LOAD_DATA and LOAD_ORDER (writes only).
    run : Out(``TRAIN_HEADER``)
        TRAIN's samples and epochs, held while it runs.
    start : Out(1)
        Starts an epoch (the sample feeder and the error statistics).
    trained : In(1)
        The epoch's last result is in the statistics.
    learn, clear, busy, steps, cycles : the core's.
    epochs, error_sum : In
        From the error statistics, for STATS.
    """

    def __init__(self, geometry: BoardGeometry, core, sum_bits: int):
        self._geo = geometry
        self._layout = core.layout
        super().__init__({
            "frames": In(stream.Signature(FRAME)),
            "listen": Out(1, init=1),
            "buffer": Out(buffer_read_signature()),
            "head": Out(stream.Signature(RESPONSE)),
            "answer": Out(stream.Signature(8)),
            "sample": Out(stream.Signature(core.sample_layout)),
            "result": In(stream.Signature(core.result_layout)),
            "weights": Out(weight_port_signature(core.layout)),
            "state": Out(state_port_signature(geometry.config)),
            "memory": Out(data_port_signature(geometry.spec.data_words)),
            "run": Out(TRAIN_HEADER), "start": Out(1), "trained": In(1),
            "learn": Out(1, init=1), "clear": Out(1), "busy": In(1),
            "steps": In(STATS_ANSWER["steps"].shape), "cycles": In(48),
            "epochs": In(STATS_ANSWER["epochs"].shape), "error_sum": In(sum_bits),
        })

    def elaborate(self, platform):
        m = Module()
        geo, lay = self._geo, self._layout
        f = geo.config.formats
        L, n_in, n_out = lay.layers, geo.n_in, geo.n_out
        frame = self.frames.payload
        weights_header, span, run = frame.header.weights, frame.header.span, frame.header.train
        state = frame.header.state
        identity = geo.identify_payload()
        m.d.comb += [self.run.eq(run), self.state.steps.eq(state.steps), self.state.lfsr.eq(state.lfsr),
                     self.state.batch.eq(state.batch)]
        # the banks READ_WEIGHTS and WRITE_WEIGHTS reach: the weights, and the update state the config keeps
        cfg = geo.config
        banks = [Bank.WEIGHTS]
        if any(LayerPlan.build(cfg, i).momentum_shift for i in range(len(cfg.layers))):
            banks.append(Bank.VELOCITY)
        if cfg.batch_size > 1:
            banks.append(Bank.BATCH_SUM)
        if cfg.adaptive_gain:
            banks.append(Bank.GAIN)
        bank_ok = Cat(*(weights_header.bank == bank for bank in banks)).any()

        # -- What the frame asks -----------------------------------------------------------------------
        is_ = {command: Signal(name=f"is_{command.name.lower()}") for command in Command}
        is_span = is_[Command.LOAD_DATA] | is_[Command.LOAD_ORDER]
        status = Signal(Status)
        limit = Signal(range(MAX_PAYLOAD + 1))          # the frame's length, then the answer's
        data_loaded = Signal()
        range_ok = Signal()                             # the header's fields are inside the device
        m.d.comb += [self.head.payload.status.eq(status), self.head.payload.command.eq(frame.command),
                     self.head.payload.length.eq(limit)]

        # -- The frame buffer: ``byte`` is the byte at ``k`` once ``fetched``: k has not moved for the
        # buffer's latency ----
        k = Signal(range(MAX_PAYLOAD + 1))
        k_step, k_jump = Signal(), Signal()
        k_to = Signal(range(8))
        fetched = Signal()
        moved = [k_jump | k_step]
        for cycle in range(1, BUFFER_LATENCY):
            moved.append(Signal(name=f"k_moved_{cycle}"))
            m.d.sync += moved[-1].eq(moved[-2])
        m.d.sync += [k.eq(Mux(k_jump, k_to, k + k_step)), fetched.eq(~Cat(*moved).any())]
        m.d.comb += self.buffer.addr.eq(k)
        byte = self.buffer.data
        at_limit = Signal()                             # k == limit, a cycle late: use it once fetched
        m.d.sync += at_limit.eq(k == limit)
        value = Signal(32)                              # the bytes taken, the last at the top
        word = value[16:]
        take, load = Signal(), Signal()
        with m.If(load):
            m.d.sync += value.eq(sign_extend(self.weights.rdata, 32))
        with m.Elif(take):
            m.d.sync += value.eq(Cat(value[8:], byte))  # also sends READ_WEIGHTS' bytes, low first
        m.d.comb += k_step.eq(take)

        # -- A run of weights, walked row-major in one layer ---------------------------------------------
        # last_col and row_end are registers, a cycle behind: the walker steps at most every other cycle.
        row = Signal(range(max(lay.n_out(l) for l in range(L)) + 1))
        col = Signal.like(self.weights.col)
        layer_ok, row_ok, col_ok, last_col, row_end = (Signal(name=n) for n in
                                                       ("layer_ok", "row_ok", "col_ok", "last_col", "row_end"))
        gain_bank = weights_header.bank == Bank.GAIN

        def shaped(weights, gain):
            """``weights`` for the layer's weight shape; ``gain`` instead for the adaptive gain bank (one row
            of GAIN_WORDS per layer)."""
            return Mux(gain_bank, gain, weights) if cfg.adaptive_gain else weights

        with m.Switch(weights_header.layer):
            for l in range(L):
                with m.Case(l):
                    rows, cols = lay.n_out(l), lay.n_in(l) + 1
                    row_at, col_at = weights_header.row, weights_header.col
                    m.d.comb += [layer_ok.eq(1), row_ok.eq(shaped(below(row_at, rows), row_at == 0)),
                                 col_ok.eq(shaped(below(col_at, cols), below(col_at, GAIN_WORDS)))]
                    m.d.sync += [last_col.eq(shaped(col == cols - 1, col == GAIN_WORDS - 1)),
                                 row_end.eq(shaped(row == rows, row == 1))]
        walk_start, walk_step = Signal(), Signal()
        with m.If(walk_start):
            m.d.sync += [row.eq(weights_header.row), col.eq(weights_header.col)]
        with m.Elif(walk_step):
            m.d.sync += col.eq(Mux(last_col, 0, col + 1))
            with m.If(last_col):
                m.d.sync += row.eq(row + 1)
        m.d.comb += [self.weights.layer.eq(weights_header.layer), self.weights.bank.eq(weights_header.bank),
                     self.weights.row.eq(row),
                     self.weights.col.eq(col), self.weights.wdata.eq(value)]

        # -- LOAD_DATA's words, count * record_words: shifts and adds over the constant's bits ---------------
        factor = f"{geo.record_words:b}"                # most significant bit first
        first = header_bytes(Command.LOAD_DATA)         # LOAD_* values start after their header
        # a count of samples that could fill a frame; a larger one makes the frame too long
        operand = span.count[:((MAX_PAYLOAD - first) // 2).bit_length()]
        product = Signal(16)
        step = Signal(range(len(factor)))
        shifted = Signal(17)
        too_big = Signal()                              # the product needs more than 15 bits
        m.d.comb += shifted.eq((product << 1) + Mux(Const(int(factor[::-1], 2), len(factor)).bit_select(step, 1),
                                                     operand, 0))
        multiply, multiplied = Signal(), step == len(factor) - 1
        with m.If(multiply):
            m.d.sync += [product.eq(shifted), step.eq(Mux(multiplied, 0, step + 1)),
                         too_big.eq(too_big | (shifted[15:] != 0))]

        # -- The length a frame must have: its header, and its values from the header's count ------------
        counted = Mux(is_[Command.WRITE_WEIGHTS], weights_header.count, Mux(is_[Command.LOAD_DATA], product,
                                                                               span.count))
        fixed = Signal(range(MAX_PAYLOAD + 1))
        for command in Command:
            with m.If(is_[command]):
                m.d.comb += fixed.eq(2 * n_in if command == Command.INFER else header_bytes(command))
        length_bad = Signal()
        expected_length = Signal(14)                    # fixed + scaled, never wrapped (< 2 ** 13)
        in_span = Signal(range(1 << 17))                # LOAD_*: one past the span's last sample

        # -- The values of a payload, and what each must be ----------------------------------------------
        checking = Signal()                             # the first pass over the values
        value_end = Mux(is_[Command.WRITE_WEIGHTS], k[:2] == (header_bytes(Command.WRITE_WEIGHTS) + 3) % 4, k[0])
        record_word = Signal(range(geo.record_words))   # LOAD_DATA: the word within its sample
        in_inputs = record_word < geo.input_words
        record_checks = []
        if geo.packed_inputs:
            if f.input.bits < 8:
                pad = record_word == geo.input_words - 1 if n_in % 2 else Const(0)
                both = fits(word[:8], f.input.bits) & (pad | fits(word[8:], f.input.bits))
                record_checks.append(~in_inputs | both)
        elif f.input.bits < 16:
            record_checks.append(~in_inputs | fits(word, f.input.bits))
        if f.activation.bits < 16:
            record_checks.append(in_inputs | fits(word, f.activation.bits))
        checks = {
            Command.WRITE_WEIGHTS: ~row_end & (fits(value, f.weight_acc.bits) if f.weight_acc.bits < 32 else 1),
            Command.LOAD_DATA: Cat(*record_checks).all() if record_checks else None,
            Command.LOAD_ORDER: below(word, geo.capacity),
            Command.INFER: fits(word, f.input.bits) if f.input.bits < 16 else None,
        }
        value_ok = Signal()                             # a register: the value taken is ok once fetched
        for command, ok in checks.items():
            with m.If(is_[command]):
                m.d.sync += value_ok.eq(1 if ok is None else ok)
        checked = Cat(*(is_[c] for c, ok in checks.items() if ok is not None)).any()

        # The data memory word LOAD_DATA writes next: a sample's words are ``capacity`` apart, and the
        # next sample starts at the word after the last one's first. LOAD_ORDER's next position, downwards.
        # TRAIN counts its epochs here.
        address = Signal.like(self.memory.addr)
        bits = len(address)
        address_load, address_step = Signal(), Signal()
        record_last = record_word == geo.record_words - 1
        next_sample = Const((1 - (geo.record_words - 1) * geo.capacity) % 2**bits, bits)
        stride = Mux(is_[Command.LOAD_ORDER], Const(-1 % 2**bits, bits),
                     Mux(is_[Command.LOAD_DATA], Mux(record_last, next_sample, geo.capacity), 1))
        with m.If(address_load):
            m.d.sync += address.eq(Mux(is_[Command.LOAD_ORDER], geo.order_address(span.first), span.first))
        with m.Elif(address_step):
            m.d.sync += address.eq(address + stride)
        m.d.comb += [self.memory.addr.eq(address), self.memory.wdata.eq(word),
                     self.memory.wmask.eq((address_step & is_span).replicate(2))]

        def values_start(check):
            """A pass over the values from the first on."""
            m.d.comb += [k_jump.eq(1), k_to.eq(Mux(is_[Command.WRITE_WEIGHTS], header_bytes(Command.WRITE_WEIGHTS),
                                                   Mux(is_span, first, 0))), walk_start.eq(1), address_load.eq(1)]
            m.d.sync += [checking.eq(check), record_word.eq(0)]
            m.next = "VALUES"

        def next_word():
            """A value (a memory word, for LOAD_DATA) is done."""
            m.d.sync += record_word.eq(Mux(record_last, 0, record_word + 1))

        # -- Answers ---------------------------------------------------------------------------------------
        stats = Signal(STATS_ANSWER)
        m.d.comb += [stats.steps.eq(self.steps), stats.cycles.eq(self.cycles), stats.epochs.eq(self.epochs),
                     stats.error_sum.eq(self.error_sum)]
        constant_byte, stats_byte = Signal(8), Signal(8)
        index = k[:(max(len(identity), STATS_ANSWER.size // 8) - 1).bit_length()]
        for source, target, size in ((Const(int.from_bytes(identity, "little"), 8 * len(identity)),
                                      constant_byte, len(identity)),
                                     (stats.as_value(), stats_byte, STATS_ANSWER.size // 8)):
            with m.Switch(index):
                for b in range(size):
                    with m.Case(b):
                        m.d.comb += target.eq(source[8 * b:8 * (b + 1)])
        prediction = sign_extend(self.result.payload.prediction, 16)
        answer = self.answer
        counter_byte = Signal(8)                        # STATS' or IDENTIFY's byte k, a cycle late
        m.d.sync += counter_byte.eq(Mux(is_[Command.STATS], stats_byte, constant_byte))
        answer_byte = Mux(is_[Command.READ_WEIGHTS], value[:8],
                          Mux(is_[Command.INFER], Mux(k[0], prediction[8:], prediction[:8]), counter_byte))
        offer = Signal()
        with m.If(offer):
            m.d.sync += [answer.payload.eq(answer_byte), answer.valid.eq(1)]
            m.d.comb += k_step.eq(1)
        with m.Elif(answer.ready):
            m.d.sync += answer.valid.eq(0)

        def respond(code, size=None, then="SEND"):
            """Answer ``code`` with ``size`` payload bytes (``limit`` as it is: None) from state ``then``."""
            m.d.sync += [status.eq(code), self.head.valid.eq(1)]
            if size is not None:
                m.d.sync += limit.eq(size)
            if then != "SEND":
                m.d.comb += [k_jump.eq(1), k_to.eq(0)]        # the answer's bytes count from 0
            m.next = then

        def answering():
            """The response is offered until its frame has gone; true: a payload byte can be offered."""
            with m.If(self.head.ready):
                m.d.sync += [self.head.valid.eq(0), self.listen.eq(1)]
                m.next = "IDLE"
            return ~answer.valid & fetched & ~at_limit

        # -- The state machine ---------------------------------------------------------------------------
        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.frames.ready.eq(1)
                with m.If(self.frames.valid):
                    m.d.sync += self.listen.eq(0)
                    m.d.sync += [is_[command].eq(frame.command == command) for command in Command]
                    m.d.sync += too_big.eq(0)
                    with m.If(frame.status != Status.OK):
                        respond(frame.status, 0)
                    with m.Else():
                        m.next = "DECODE"

            with m.State("DECODE"):
                m.d.sync += in_span.eq(span.first + span.count)
                with m.If(~Cat(*is_.values()).any()):
                    respond(Status.UNKNOWN_COMMAND, 0)
                with m.Elif(is_[Command.LOAD_DATA]):
                    m.d.sync += product.eq(0)
                    m.next = "COUNT_WORDS"
                with m.Else():
                    m.next = "LENGTH"

            with m.State("COUNT_WORDS"):
                m.d.comb += multiply.eq(1)
                with m.If(multiplied):
                    m.next = "LENGTH"

            with m.State("LENGTH"):
                scaled = Mux(is_[Command.WRITE_WEIGHTS], counted[:10] << 2, Mux(is_span, counted[:10] << 1, 0))
                weights_ok = layer_ok & bank_ok & row_ok & col_ok
                ranges = {
                    Command.SET_STATE: below(state.batch, max(cfg.batch_size, 1)),
                    Command.READ_WEIGHTS: weights_ok & below(weights_header.count, MAX_READ_WEIGHTS + 1),
                    Command.WRITE_WEIGHTS: weights_ok,
                    Command.LOAD_DATA: below(in_span, geo.capacity + 1),
                    Command.LOAD_ORDER: below(in_span, geo.capacity + 1),
                    Command.TRAIN: (run.samples != 0) & below(run.samples, geo.capacity + 1) & (run.epochs != 0),
                }
                too_long = (((is_[Command.WRITE_WEIGHTS] | is_span) & (counted[10:] != 0))
                            | is_[Command.LOAD_DATA] & (too_big | (span.count[len(operand):] != 0)))
                # the length the frame must have, registered, and compared in the next cycle: on the
                # iCE40 the sum and the comparison together do not fit one clock
                m.d.sync += [length_bad.eq(too_long), expected_length.eq(fixed + scaled),
                             range_ok.eq(Cat(*(is_[c] & ok for c, ok in ranges.items())).any()
                                         | ~Cat(*(is_[c] for c in ranges)).any())]
                m.next = "COMPARE_LENGTH"

            with m.State("COMPARE_LENGTH"):
                m.d.sync += length_bad.eq(length_bad | (expected_length != frame.length))
                m.next = "CHECK_LENGTH"

            with m.State("CHECK_LENGTH"):
                with m.If(length_bad):
                    respond(Status.BAD_LENGTH, 0)
                with m.Else():
                    # READ_WEIGHTS walks its weights a byte at a time, as it will send them
                    m.d.sync += limit.eq(Mux(is_[Command.READ_WEIGHTS], weights_header.count << 2, frame.length))
                    m.d.comb += [k_jump.eq(1), k_to.eq(0), walk_start.eq(1)]
                    m.next = "CHECK_RANGE"

            with m.State("CHECK_RANGE"):
                with m.If(~range_ok):
                    respond(Status.OUT_OF_RANGE, 0)
                with m.Elif(is_[Command.TRAIN] & ~data_loaded):
                    respond(Status.NO_DATA, 0)
                with m.Elif(is_[Command.IDENTIFY]):
                    respond(Status.OK, len(identity), "ANSWER")
                with m.Elif(is_[Command.STATS]):
                    respond(Status.OK, STATS_ANSWER.size // 8, "ANSWER")
                with m.Elif(is_[Command.CLEAR]):
                    m.next = "CLEAR"
                with m.Elif(is_[Command.SET_STATE]):
                    m.next = "SET_STATE"
                with m.Elif(is_[Command.TRAIN]):
                    m.d.sync += [self.learn.eq(1), address.eq(0)]
                    m.next = "EPOCH"
                with m.Elif(is_[Command.READ_WEIGHTS]):
                    m.next = "WALK"
                with m.Elif(checked):
                    values_start(check=True)
                with m.Else():
                    values_start(check=False)

            with m.State("WALK"):
                with m.If(~fetched):
                    pass
                with m.Elif(at_limit):
                    m.d.comb += walk_start.eq(1)
                    respond(Status.OK, then="READ")
                with m.Elif(row_end):
                    respond(Status.OUT_OF_RANGE, 0)
                with m.Else():
                    m.d.comb += [k_step.eq(1), walk_step.eq(k[:2] == 3)]

            with m.State("VALUES"):
                with m.If(~fetched):
                    pass
                with m.Elif(at_limit):
                    with m.If(checking):
                        values_start(check=False)
                    with m.Elif(is_[Command.INFER]):
                        m.d.sync += [value.eq(0), limit.eq(n_out)]
                        m.d.comb += [k_jump.eq(1), k_to.eq(0)]
                        m.next = "TARGETS"
                    with m.Else():
                        m.d.sync += data_loaded.eq(data_loaded | is_[Command.LOAD_DATA])
                        respond(Status.OK, 0)
                with m.Else():
                    m.d.comb += take.eq(1)
                    with m.If(value_end):
                        m.next = "VALUE"

            with m.State("VALUE"):
                with m.If(~fetched):
                    pass
                with m.Elif(checking):
                    with m.If(value_ok):
                        m.d.comb += walk_step.eq(1)
                        next_word()
                        m.next = "VALUES"
                    with m.Else():
                        respond(Status.OUT_OF_RANGE, 0)
                with m.Elif(is_[Command.WRITE_WEIGHTS]):
                    with m.If(~self.busy):
                        m.d.comb += [self.weights.write.eq(1), walk_step.eq(1)]
                        m.next = "VALUES"
                with m.Elif(is_span):
                    m.d.comb += address_step.eq(1)            # writes the word
                    next_word()
                    m.next = "VALUES"
                with m.Else():                  # INFER
                    m.d.sync += self.learn.eq(0)
                    m.d.comb += self.sample.valid.eq(1)
                    with m.If(self.sample.ready):
                        m.next = "VALUES"

            with m.State("TARGETS"):
                # the core takes targets after the inputs even when it does not learn
                with m.If(~fetched):
                    pass
                with m.Elif(at_limit):
                    respond(Status.OK, 2 * n_out, "INFER")
                with m.Else():
                    m.d.comb += [self.sample.valid.eq(1), k_step.eq(self.sample.ready)]

            # an epoch at a time: the next starts as soon as the statistics have the last one
            with m.State("EPOCH"):
                m.d.comb += self.start.eq(1)
                m.next = "TRAIN"
            with m.State("TRAIN"):
                with m.If(self.trained):
                    m.d.comb += address_step.eq(1)
                    m.next = "EPOCH_END"
            with m.State("EPOCH_END"):
                m.next = "EPOCH"
                with m.If(address == run.epochs):
                    m.next = "TRAINED"
            with m.State("TRAINED"):
                with m.If(~self.busy):
                    respond(Status.OK, 0)

            with m.State("SET_STATE"):
                with m.If(~self.busy):
                    m.d.comb += self.state.load.eq(1)
                    respond(Status.OK, 0)

            with m.State("CLEAR"):
                # the strobe from a state of its own: no path from the header checks into the core
                m.d.comb += self.clear.eq(1)
                m.next = "CLEAR_SENT"
            with m.State("CLEAR_SENT"):
                m.next = "CLEARING"             # the core raises busy the cycle after clear
            with m.State("CLEARING"):
                with m.If(~self.busy):
                    respond(Status.OK, 0)

            with m.State("SEND"):
                answering()
            with m.State("ANSWER"):
                m.d.comb += offer.eq(answering())
            with m.State("READ"):
                with m.If(answering() & ~self.busy):
                    m.d.comb += self.weights.read.eq(1)
                    m.next = "READ_WAIT"
            with m.State("READ_WAIT"):
                answering()
                m.d.comb += load.eq(self.weights.rvalid)
                with m.If(self.weights.rvalid):
                    m.next = "READ_BYTES"
            with m.State("READ_BYTES"):
                with m.If(answering()):
                    m.d.comb += [offer.eq(1), take.eq(1)]
                    with m.If(k[:2] == 3):
                        m.d.comb += walk_step.eq(1)
                        m.next = "READ"
            with m.State("INFER"):
                with m.If(answering() & self.result.valid):
                    m.d.comb += [offer.eq(1), self.result.ready.eq(k[0])]

        m.d.comb += self.sample.payload.data.eq(word)
        return m
