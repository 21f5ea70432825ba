"""The device side of the host link: frames in, commands run on the learner core, frames out.

One request at a time (``docs/protocol.md``):

1. Receive: the sync byte, command, length, payload and CRC. The payload is
   kept in a frame buffer and its first bytes (the command's header fields)
   in a register. A frame that stops arriving for ``timeout_cycles`` is
   answered ``TIMEOUT``; an over-long length ``BAD_LENGTH`` at once.
2. Check: the CRC, the command, the length the command needs, the ranges of
   its header fields. Commands that carry values go over the frame buffer
   twice: once to check every value, once to act, so a rejected frame
   changes nothing.
3. Act, then answer: one response frame, its payload read from the core
   (weights, predictions), the counters or the identity ROM as it is sent.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..hdl.core import LearnerCore, weight_port_signature
from .geometry import MAX_READ_WEIGHTS, BoardGeometry
from .protocol import CRC, MAX_PAYLOAD, REQUEST_SYNC, RESPONSE_SYNC, Command, Status

__all__ = ["ProtocolEngine", "data_port_signature"]

#: Bytes of a command's header fields kept in a register as they arrive.
HEADER_BYTES = 7
#: STATS: steps u32, cycles u64, epochs u16, last epoch's error sum u64.
STATS_BYTES = 22


def sign_extend(value, bits: int):
    """``value`` (signed, at most ``bits`` wide) as ``bits`` bits."""
    value = Value.cast(value)
    width = len(value)
    return value if width >= bits else Cat(value, value[-1].replicate(bits - width))


def data_port_signature(words: int) -> wiring.Signature:
    """A 16-bit memory port, from the user's side: ``rdata`` is the word at the previous cycle's ``addr``."""
    return wiring.Signature({
        "addr": Out(range(words)), "wdata": Out(16), "wmask": Out(2), "rdata": In(16),
    })


class ProtocolEngine(wiring.Component):
    """Runs the host link's commands on a learner core and a data-set memory.

    Members
    -------
    rx, tx : byte streams from and to the UART.
    sample, result, weights, learn, clear, busy, steps, cycles :
        the core's ports, from the engine's side.
    memory : the data-set memory.
    idle : no frame in progress: waiting for a sync byte with nothing to send.
    """

    def __init__(self, geometry: BoardGeometry, core: LearnerCore, timeout_cycles: int):
        self._geo = geometry
        self._layout = core.layout
        self._timeout = max(int(timeout_cycles), 16)
        super().__init__({
            "rx": In(stream.Signature(8)),
            "tx": Out(stream.Signature(8)),
            "sample": Out(stream.Signature(core.sample_layout)),
            "result": In(stream.Signature(core.result_layout)),
            "weights": Out(weight_port_signature(core.layout)),
            "learn": Out(1), "clear": Out(1), "busy": In(1), "steps": In(32), "cycles": In(48),
            "memory": Out(data_port_signature(geometry.spec.data_words)),
            "idle": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        geo, lay = self._geo, self._layout
        cfg = geo.config
        f = cfg.formats
        L = lay.layers
        n_in, n_out = geo.n_in, geo.n_out
        rx, tx, mem, host = self.rx, self.tx, self.memory, self.weights

        # -- Frame buffer and CRCs ------------------------------------------------------------
        m.submodules.frame = frame = Memory(shape=8, depth=MAX_PAYLOAD, init=[])
        buf_wr, buf_rd = frame.write_port(), frame.read_port()
        m.submodules.rx_crc = rx_crc = CRC.create()
        m.submodules.tx_crc = tx_crc = CRC.create()

        command = Signal(8)
        length = Signal(16)
        header = Signal(8 * HEADER_BYTES)
        status = Signal(8)
        k = Signal(16)                     # byte of the payload being received or sent
        crc_low_ok = Signal()
        timer = Signal(range(self._timeout + 1))
        data_loaded = Signal()

        def field(offset, size):
            return header[8 * offset:8 * (offset + size)]

        # header fields, by command
        w_layer, w_row, w_col, w_count = field(0, 1), field(1, 2), field(3, 2), field(5, 2)
        first, count = field(0, 2), field(2, 2)          # LOAD_DATA, LOAD_ORDER
        samples, epochs = field(0, 2), field(2, 2)       # TRAIN

        # -- Length and range checks, combinational on the received header ---------------------
        # Lengths per command; None: any command-specific check below.
        needs = {
            Command.IDENTIFY: length == 0, Command.STATS: length == 0, Command.CLEAR: length == 0,
            Command.READ_WEIGHTS: length == HEADER_BYTES,
            Command.WRITE_WEIGHTS: length == HEADER_BYTES + 4 * w_count,
            Command.LOAD_DATA: length == 4 + 2 * geo.record_elements * count,
            Command.LOAD_ORDER: length == 4 + 2 * count,
            Command.TRAIN: length == 4,
            Command.INFER: length == 2 * n_in,
        }
        known = Signal()
        length_ok = Signal()
        range_ok = Signal(init=1)
        with m.Switch(command):
            for cmd, ok in needs.items():
                with m.Case(cmd):
                    m.d.comb += [known.eq(1), length_ok.eq(ok)]

        weights_in_layer = Signal()        # (w_row, w_col) + w_count stays inside w_layer
        with m.Switch(w_layer):
            for l in range(L):
                with m.Case(l):
                    stride = lay.n_in(l) + 1
                    m.d.comb += weights_in_layer.eq(
                        (w_row < lay.n_out(l)) & (w_col < stride)
                        & (w_row * stride + w_col + w_count <= lay.n_out(l) * stride))
        with m.Switch(command):
            with m.Case(Command.WRITE_WEIGHTS):
                m.d.comb += range_ok.eq(weights_in_layer)
            with m.Case(Command.READ_WEIGHTS):
                m.d.comb += range_ok.eq(weights_in_layer & (w_count <= MAX_READ_WEIGHTS))
            with m.Case(Command.LOAD_DATA, Command.LOAD_ORDER):
                m.d.comb += range_ok.eq(first + count <= geo.capacity)
            with m.Case(Command.TRAIN):
                m.d.comb += range_ok.eq((samples >= 1) & (samples <= geo.capacity) & (epochs >= 1))

        # -- Value pass over the frame buffer: check every value, then act on each -------------
        elem_bytes = Signal(range(5))
        elem = Signal(32)
        elem_k = Signal(range(5))          # bytes of the current value read
        elem_n = Signal(16)                # values done
        elem_total = Signal(16)
        acting = Signal()                  # 0: the checking pass, 1: the acting pass
        value16 = elem[16:32].as_signed()
        record_k = Signal(range(geo.record_elements))   # LOAD_DATA: value within its sample
        record_base = Signal(range(geo.spec.data_words + 1))
        host_row = Signal.like(host.row)
        host_col = Signal.like(host.col)

        def in_range(value, fmt):
            return (value >= fmt.min_code) & (value <= fmt.max_code)

        value_ok = Signal(init=1)
        with m.Switch(command):
            with m.Case(Command.WRITE_WEIGHTS):
                if f.weight_acc.bits < 32:
                    m.d.comb += value_ok.eq(in_range(elem.as_signed(), f.weight_acc))
            with m.Case(Command.LOAD_DATA):
                m.d.comb += value_ok.eq(Mux(record_k < n_in, in_range(value16, f.input),
                                            in_range(value16, f.activation)))
            with m.Case(Command.LOAD_ORDER):
                m.d.comb += value_ok.eq(elem[16:32] < geo.capacity)
            with m.Case(Command.INFER):
                m.d.comb += value_ok.eq(in_range(value16, f.input))

        def next_weight():
            """Advance (host_row, host_col) row-major through the layer's weights, bias last."""
            last_col = Signal()
            with m.Switch(w_layer):
                for l in range(L):
                    with m.Case(l):
                        m.d.comb += last_col.eq(host_col == lay.n_in(l))
            with m.If(last_col):
                m.d.sync += [host_col.eq(0), host_row.eq(host_row + 1)]
            with m.Else():
                m.d.sync += host_col.eq(host_col + 1)

        m.d.comb += [host.layer.eq(w_layer), host.row.eq(host_row), host.col.eq(host_col)]

        # the data memory address of a sample's value k
        def value_word(base, k_):
            if geo.packed_inputs:
                return base + Mux(k_ < n_in, k_ >> 1, k_ - n_in + geo.input_words)
            return base + k_

        def low_byte_select(k_):
            return Mux(k_ >= n_in, 0b11, Mux(k_[0], 0b10, 0b01)) if geo.packed_inputs else 0b11

        # -- Training: a feeder of samples and a consumer of results ---------------------------
        training = Signal()
        feed_pos = Signal(16)
        feed_epoch = Signal(16)
        feed_k = Signal(range(geo.record_elements))
        feed_base = Signal(range(geo.spec.data_words + 1))
        feed_done = Signal()
        results_per_epoch = geo.capacity * n_out
        results_in_epoch = Signal(range(results_per_epoch + 1))
        result_n = Signal(range(results_per_epoch))
        epochs_run = Signal(16)            # in this TRAIN
        epochs_total = Signal(16)          # since CLEAR
        # wide enough for a whole epoch of the largest squared errors: it never wraps
        sum_bits = min(64, 2 * f.error.bits + results_per_epoch.bit_length())
        error_sum = Signal(sum_bits)
        last_error_sum = Signal(sum_bits)
        e = self.result.payload.error
        square = Signal(unsigned(2 * f.error.bits))
        square_valid = Signal()
        square_last = Signal()

        sample_word = self.sample.payload.data
        if geo.packed_inputs:
            byte = Mux(feed_k[0], mem.rdata[8:16], mem.rdata[0:8]).as_signed()
            m.d.comb += sample_word.eq(Mux(feed_k < n_in, byte, mem.rdata.as_signed()))
        else:
            m.d.comb += sample_word.eq(mem.rdata.as_signed())

        # the memory word of value k of a sample: the feeder's while training, else LOAD_DATA's
        sample_addr = Signal.like(mem.addr)
        m.d.comb += sample_addr.eq(value_word(Mux(training, feed_base, record_base), Mux(training, feed_k, record_k)))

        start_feeder = Signal()
        with m.FSM(name="feeder"):
            with m.State("IDLE"):
                with m.If(start_feeder):
                    m.d.sync += [feed_pos.eq(0), feed_epoch.eq(0), feed_done.eq(0)]
                    m.next = "ORDER"
            with m.State("ORDER"):
                m.d.comb += mem.addr.eq(geo.order_base + feed_pos)
                m.next = "INDEX"
            with m.State("INDEX"):
                m.d.sync += [feed_base.eq(mem.rdata * geo.record_words), feed_k.eq(0)]
                m.next = "READ"
            with m.State("READ"):
                m.d.comb += mem.addr.eq(sample_addr)
                m.next = "PUSH"
            with m.State("PUSH"):
                m.d.comb += [mem.addr.eq(sample_addr), self.sample.valid.eq(1)]
                with m.If(self.sample.ready):
                    m.d.sync += feed_k.eq(feed_k + 1)
                    m.next = "READ"
                    with m.If(feed_k == geo.record_elements - 1):
                        m.d.sync += feed_pos.eq(feed_pos + 1)
                        m.next = "ORDER"
                        with m.If(feed_pos == samples - 1):
                            m.d.sync += [feed_pos.eq(0), feed_epoch.eq(feed_epoch + 1)]
                            with m.If(feed_epoch == epochs - 1):
                                m.d.sync += feed_done.eq(1)
                                m.next = "IDLE"

        take = training & self.result.valid
        m.d.sync += [square.eq(e * e), square_valid.eq(take), square_last.eq(take & (result_n == results_in_epoch - 1))]
        with m.If(take):
            m.d.sync += result_n.eq(Mux(result_n == results_in_epoch - 1, 0, result_n + 1))
        summed = Signal.like(error_sum)
        m.d.comb += summed.eq(error_sum + square)
        with m.If(square_valid):
            m.d.sync += error_sum.eq(summed)
            with m.If(square_last):
                m.d.sync += [last_error_sum.eq(summed), error_sum.eq(0),
                             epochs_run.eq(epochs_run + 1), epochs_total.eq(epochs_total + 1)]

        # -- Response payload bytes, produced as they are sent ---------------------------------
        identity = geo.identify_payload()
        stats = Cat(self.steps, self.cycles, Const(0, 16), epochs_total, last_error_sum, Const(0, 64 - sum_bits))
        out_byte = Signal(8)
        out_ready = Signal(init=1)         # the byte at k can be sent
        def byte_of(value, bytes_, index):
            """Byte ``index`` of ``value``: a small multiplexer on the index's low bits, not a shifter."""
            value = Value.cast(value)
            with m.Switch(index[:max(1, (bytes_ - 1).bit_length())]):
                for b in range(bytes_):
                    with m.Case(b):
                        m.d.comb += out_byte.eq(value[8 * b:8 * (b + 1)])

        with m.Switch(command):
            with m.Case(Command.IDENTIFY):
                byte_of(Const(int.from_bytes(identity, "little"), 8 * len(identity)), len(identity), k)
            with m.Case(Command.STATS):
                byte_of(stats, STATS_BYTES, k)
            with m.Case(Command.READ_WEIGHTS):
                byte_of(sign_extend(host.rdata, 32), 4, k)
            with m.Case(Command.INFER):
                byte_of(sign_extend(self.result.payload.prediction.as_signed(), 16), 2, k)
                m.d.comb += out_ready.eq(self.result.valid)
        response_length = Signal(16)

        # -- The request/response FSM ----------------------------------------------------------
        rx_byte = rx.payload
        got = rx.valid                     # rx.ready is always set: bytes between frames are skipped
        m.d.comb += [rx.ready.eq(1), buf_wr.addr.eq(k), buf_wr.data.eq(rx_byte)]

        def respond(code, size=0):
            m.d.sync += [status.eq(code), response_length.eq(size), k.eq(0)]
            m.next = "SEND_SYNC"

        def receiving(then):
            """A byte of the frame arrives, or it has stopped arriving."""
            with m.If(got):
                m.d.sync += timer.eq(0)
                then()
            with m.Elif(timer == self._timeout):
                respond(Status.TIMEOUT)
            with m.Else():
                m.d.sync += timer.eq(timer + 1)

        def start_values(size, offset, total):
            m.d.sync += [elem_bytes.eq(size), elem_k.eq(0), elem_n.eq(0), elem_total.eq(total),
                         k.eq(offset), acting.eq(0), record_k.eq(0)]
            m.next = "VALUE_READ"

        with m.FSM(name="frame"):
            with m.State("IDLE"):
                m.d.comb += self.idle.eq(1)
                m.d.sync += timer.eq(0)
                with m.If(got & (rx_byte == REQUEST_SYNC)):
                    m.d.comb += rx_crc.start.eq(1)
                    m.d.sync += [command.eq(0), header.eq(0)]
                    m.next = "COMMAND"

            with m.State("COMMAND"):
                def on_command():
                    m.d.comb += [rx_crc.data.eq(rx_byte), rx_crc.valid.eq(1)]
                    m.d.sync += command.eq(rx_byte)
                    m.next = "LENGTH_LOW"
                receiving(on_command)

            with m.State("LENGTH_LOW"):
                def on_length_low():
                    m.d.comb += [rx_crc.data.eq(rx_byte), rx_crc.valid.eq(1)]
                    m.d.sync += length[:8].eq(rx_byte)
                    m.next = "LENGTH_HIGH"
                receiving(on_length_low)

            with m.State("LENGTH_HIGH"):
                def on_length_high():
                    m.d.comb += [rx_crc.data.eq(rx_byte), rx_crc.valid.eq(1)]
                    m.d.sync += [length[8:].eq(rx_byte), k.eq(0)]
                    with m.If(Cat(length[:8], rx_byte) > MAX_PAYLOAD):
                        respond(Status.BAD_LENGTH)
                    with m.Elif(Cat(length[:8], rx_byte) == 0):
                        m.next = "CRC_LOW"
                    with m.Else():
                        m.next = "PAYLOAD"
                receiving(on_length_high)

            with m.State("PAYLOAD"):
                def on_payload():
                    m.d.comb += [rx_crc.data.eq(rx_byte), rx_crc.valid.eq(1), buf_wr.en.eq(1)]
                    for b in range(HEADER_BYTES):
                        with m.If(k == b):
                            m.d.sync += header[8 * b:8 * (b + 1)].eq(rx_byte)
                    m.d.sync += k.eq(k + 1)
                    with m.If(k == length - 1):
                        m.next = "CRC_LOW"
                receiving(on_payload)

            with m.State("CRC_LOW"):
                def on_crc_low():
                    m.d.sync += crc_low_ok.eq(rx_byte == rx_crc.crc[:8])
                    m.next = "CRC_HIGH"
                receiving(on_crc_low)

            with m.State("CRC_HIGH"):
                def on_crc_high():
                    with m.If(~crc_low_ok | (rx_byte != rx_crc.crc[8:])):
                        respond(Status.BAD_CRC)
                    with m.Else():
                        m.next = "CHECK"
                receiving(on_crc_high)

            with m.State("CHECK"):
                with m.If(~known):
                    respond(Status.UNKNOWN_COMMAND)
                with m.Elif(~length_ok):
                    respond(Status.BAD_LENGTH)
                with m.Elif(~range_ok):
                    respond(Status.OUT_OF_RANGE)
                with m.Elif((command == Command.TRAIN) & ~data_loaded):
                    respond(Status.NO_DATA)
                with m.Else():
                    m.d.sync += [host_row.eq(w_row), host_col.eq(w_col),
                                 record_base.eq(first * geo.record_words)]
                    with m.Switch(command):
                        with m.Case(Command.IDENTIFY):
                            respond(Status.OK, len(identity))
                        with m.Case(Command.STATS):
                            respond(Status.OK, STATS_BYTES)
                        with m.Case(Command.READ_WEIGHTS):
                            respond(Status.OK, 4 * w_count)
                        with m.Case(Command.CLEAR):
                            m.d.comb += self.clear.eq(1)
                            m.d.sync += [epochs_total.eq(0), last_error_sum.eq(0)]
                            m.next = "WAIT_CORE"
                        with m.Case(Command.TRAIN):
                            m.d.comb += start_feeder.eq(1)
                            m.d.sync += [training.eq(1), self.learn.eq(1), result_n.eq(0), epochs_run.eq(0),
                                         error_sum.eq(0), results_in_epoch.eq(samples * n_out)]
                            m.next = "TRAIN"
                        with m.Case(Command.WRITE_WEIGHTS):
                            start_values(4, HEADER_BYTES, w_count)
                        with m.Case(Command.LOAD_DATA):
                            start_values(2, 4, count * geo.record_elements)
                        with m.Case(Command.LOAD_ORDER):
                            start_values(2, 4, count)
                        with m.Case(Command.INFER):
                            m.d.sync += self.learn.eq(0)
                            start_values(2, 0, n_in)

            # one value of `elem_bytes` bytes, little-endian, into the top of `elem`
            with m.State("VALUE_READ"):
                m.d.comb += buf_rd.addr.eq(k)
                with m.If(elem_n == elem_total):
                    with m.If(acting):
                        m.next = "VALUES_DONE"
                    with m.Else():
                        m.d.sync += [acting.eq(1), elem_n.eq(0), record_k.eq(0),
                                     k.eq(Mux(command == Command.WRITE_WEIGHTS, HEADER_BYTES,
                                              Mux(command == Command.INFER, 0, 4)))]
                with m.Else():
                    m.next = "VALUE_SHIFT"
            with m.State("VALUE_SHIFT"):
                m.d.sync += [elem.eq(Cat(elem[8:], buf_rd.data)), k.eq(k + 1), elem_k.eq(elem_k + 1)]
                m.next = "VALUE_READ"
                with m.If(elem_k == elem_bytes - 1):
                    m.d.sync += elem_k.eq(0)
                    m.next = "VALUE"
            with m.State("VALUE"):
                advance = Signal()
                with m.If(~acting):
                    with m.If(value_ok):
                        m.d.comb += advance.eq(1)
                    with m.Else():
                        respond(Status.OUT_OF_RANGE)
                with m.Else():
                    with m.Switch(command):
                        with m.Case(Command.WRITE_WEIGHTS):
                            m.d.comb += [host.write.eq(1), host.wdata.eq(elem.as_signed()), advance.eq(1)]
                            next_weight()
                        with m.Case(Command.LOAD_DATA):
                            m.d.comb += [mem.addr.eq(sample_addr),
                                         mem.wdata.eq(Mux(record_k < n_in, Cat(elem[16:24], elem[16:24]),
                                                          elem[16:32]) if geo.packed_inputs else elem[16:32]),
                                         mem.wmask.eq(low_byte_select(record_k)), advance.eq(1)]
                        with m.Case(Command.LOAD_ORDER):
                            m.d.comb += [mem.addr.eq(geo.order_base + first + elem_n), mem.wdata.eq(elem[16:32]),
                                         mem.wmask.eq(0b11), advance.eq(1)]
                        with m.Case(Command.INFER):
                            m.d.comb += [self.sample.valid.eq(1), sample_word.eq(value16),
                                         advance.eq(self.sample.ready)]
                with m.If(advance):
                    m.d.sync += [elem_n.eq(elem_n + 1),
                                 record_k.eq(Mux(record_k == geo.record_elements - 1, 0, record_k + 1))]
                    with m.If(acting & (record_k == geo.record_elements - 1)):
                        m.d.sync += record_base.eq(record_base + geo.record_words)
                    m.next = "VALUE_READ"

            with m.State("VALUES_DONE"):
                with m.Switch(command):
                    with m.Case(Command.LOAD_DATA):
                        m.d.sync += data_loaded.eq(1)
                        respond(Status.OK)
                    with m.Case(Command.INFER):
                        m.d.sync += elem_n.eq(0)
                        m.next = "INFER_TARGETS"
                    with m.Default():
                        respond(Status.OK)

            with m.State("INFER_TARGETS"):
                # the core takes a target after the inputs even when it does not learn
                m.d.comb += [self.sample.valid.eq(1), sample_word.eq(0)]
                with m.If(self.sample.ready):
                    m.d.sync += elem_n.eq(elem_n + 1)
                    with m.If(elem_n == n_out - 1):
                        respond(Status.OK, 2 * n_out)

            with m.State("TRAIN"):
                with m.If(feed_done & (epochs_run == epochs) & ~square_valid & ~self.busy):
                    m.d.sync += [training.eq(0), self.learn.eq(1)]
                    respond(Status.OK)

            with m.State("WAIT_CORE"):
                # the core raises busy the cycle after clear
                m.next = "WAIT_IDLE"
            with m.State("WAIT_IDLE"):
                with m.If(~self.busy):
                    respond(Status.OK)

            # -- response frame ---------------------------------------------------------------
            def send(value, then, crc=True):
                m.d.comb += [tx.valid.eq(1), tx.payload.eq(value)]
                with m.If(tx.ready):
                    if crc:
                        m.d.comb += [tx_crc.data.eq(value), tx_crc.valid.eq(1)]
                    then()

            def go(state):
                def then():
                    m.next = state
                return then

            with m.State("SEND_SYNC"):
                m.d.comb += tx_crc.start.eq(1)
                send(RESPONSE_SYNC, go("SEND_STATUS"), crc=False)
            with m.State("SEND_STATUS"):
                send(status, go("SEND_COMMAND"))
            with m.State("SEND_COMMAND"):
                send(command, go("SEND_LENGTH_LOW"))
            with m.State("SEND_LENGTH_LOW"):
                send(response_length[:8], go("SEND_LENGTH_HIGH"))
            with m.State("SEND_LENGTH_HIGH"):
                def after_length():
                    m.next = "SEND_PAYLOAD"
                    with m.If(response_length == 0):
                        m.next = "SEND_CRC_LOW"
                send(response_length[8:], after_length)
            with m.State("SEND_PAYLOAD"):
                with m.If(out_ready):
                    def next_byte():
                        m.d.sync += k.eq(k + 1)
                        with m.If(command == Command.READ_WEIGHTS):
                            with m.If(k[:2] == 3):
                                next_weight()
                                m.next = "SEND_SETTLE"
                        with m.If(command == Command.INFER):
                            m.d.comb += self.result.ready.eq(k[0])
                        with m.If(k == response_length - 1):
                            m.next = "SEND_CRC_LOW"
                    send(out_byte, next_byte)
            with m.State("SEND_SETTLE"):
                # the weight memory answers the new address one cycle later
                m.next = "SEND_PAYLOAD"
            with m.State("SEND_CRC_LOW"):
                send(tx_crc.crc[:8], go("SEND_CRC_HIGH"), crc=False)
            with m.State("SEND_CRC_HIGH"):
                send(tx_crc.crc[8:], go("IDLE"), crc=False)

        # consume results during training
        with m.If(training):
            m.d.comb += self.result.ready.eq(1)
        return m
