// Transaction-level harness around the Verilated learner core, loaded from Python with ctypes.
//
// The clock runs here, in C++: Python hands over whole blocks of samples and
// gets every step's results back, so no Python runs per clock cycle.
// Compile-time constants (-D): N_IN, N_OUT, SAMPLE_BITS, ACT_BITS, ERR_BITS, ACC_BITS,
// TRACE (0: none, 1: FST, 2: VCD).
#include <cstdint>
#include <memory>

#include "Vnfloop_core.h"
#include "verilated.h"
#if TRACE == 1
#include "verilated_fst_c.h"
using Trace = VerilatedFstC;
#elif TRACE == 2
#include "verilated_vcd_c.h"
using Trace = VerilatedVcdC;
#endif

// Verilator escapes the "__" of Amaranth's port names (i_stream__valid) as "___05F".
#define PORT(group, member) group##___05F##member

namespace {

struct Sim {
    std::unique_ptr<VerilatedContext> context;
    std::unique_ptr<Vnfloop_core> top;
#if TRACE
    std::unique_ptr<Trace> trace;
    bool tracing = true;        // nf_set_tracing: record only a window of steps
#endif
    uint64_t cycles = 0;
};

inline uint64_t mask(int bits) { return bits >= 64 ? ~0ull : (1ull << bits) - 1; }

inline int64_t sign_extend(uint64_t value, int bits) {
    value &= mask(bits);
    const uint64_t sign = 1ull << (bits - 1);
    return static_cast<int64_t>((value ^ sign) - sign);
}

inline void half(Sim* s, int clk) {
    s->top->clk = clk;
    s->top->eval();
#if TRACE
    if (s->trace && s->tracing) s->trace->dump(s->context->time());
    s->context->timeInc(1);
#endif
}

// Inputs must be set before calling; outputs seen after half(s, 0) are this cycle's.
inline void tick(Sim* s) {
    half(s, 1);
    s->cycles++;
    half(s, 0);
}

bool wait_idle(Sim* s, uint64_t limit) {
    for (uint64_t k = 0; s->top->busy; k++) {
        if (k >= limit) return false;
        tick(s);
    }
    return true;
}

// One weight-port access per weight of a layer, row-major; `access(j, i)` sets the
// strobe and data for W[j, i] before the clock edge.
template <typename Access>
int for_each_weight(Sim* s, int layer, int rows, int cols, Access access) {
    auto* top = s->top.get();
    if (!wait_idle(s, 1u << 30)) return 0;
    for (int j = 0; j < rows; j++) {
        for (int i = 0; i < cols; i++) {
            top->PORT(weights, layer) = layer;
            top->PORT(weights, row) = j;
            top->PORT(weights, col) = i;
            access(j, i);
            half(s, 0);
            tick(s);
        }
    }
    top->PORT(weights, read) = 0;
    top->PORT(weights, write) = 0;
    half(s, 0);
    return 1;
}

}  // namespace

extern "C" {

void nf_set_tracing(void* handle, int on) {
#if TRACE
    static_cast<Sim*>(handle)->tracing = on != 0;
#else
    (void)handle;
    (void)on;
#endif
}

void* nf_new(const char* trace_path) {
    auto* s = new Sim;
    s->context = std::make_unique<VerilatedContext>();
    s->top = std::make_unique<Vnfloop_core>(s->context.get());
#if TRACE
    if (trace_path && trace_path[0]) {
        s->context->traceEverOn(true);
        s->trace = std::make_unique<Trace>();
        s->top->trace(s->trace.get(), 99);
        s->trace->open(trace_path);
    }
#else
    (void)trace_path;
#endif
    s->top->rst = 1;
    s->top->PORT(o_stream, ready) = 0;
    half(s, 0);
    for (int k = 0; k < 4; k++) tick(s);
    s->top->rst = 0;
    half(s, 0);
    return s;
}

void nf_free(void* handle) {
    auto* s = static_cast<Sim*>(handle);
#if TRACE
    if (s->trace) s->trace->close();
#endif
    s->top->final();
    delete s;
}

uint64_t nf_cycles(void* handle) { return static_cast<Sim*>(handle)->cycles; }
uint64_t nf_steps(void* handle) { return static_cast<Sim*>(handle)->top->steps; }
uint64_t nf_step_cycles(void* handle) { return static_cast<Sim*>(handle)->top->cycles; }

// Train on n samples (learn = 1) or only infer (learn = 0); xs: n * N_IN codes,
// ys: n * N_OUT codes. Writes n * N_OUT predictions and errors. Returns the number of results received (n * N_OUT), or
// -1 when the core stops answering for `limit` cycles.
int64_t nf_train(void* handle, int64_t n, const int64_t* xs, const int64_t* ys,
                 int64_t* predictions, int64_t* errors, uint64_t limit, int learn) {
    auto* s = static_cast<Sim*>(handle);
    auto* top = s->top.get();
    if (!wait_idle(s, limit)) return -1;
    top->learn = learn;
    const int64_t per_sample = N_IN + N_OUT;
    const int64_t inputs = n * per_sample, outputs = n * N_OUT;
    int64_t sent = 0, received = 0;
    uint64_t quiet = 0;
    top->PORT(o_stream, ready) = 1;
    while (received < outputs) {
        const bool have = sent < inputs;
        top->PORT(i_stream, valid) = have;
        if (have) {
            const int64_t sample = sent / per_sample, k = sent % per_sample;
            const int64_t value = k < N_IN ? xs[sample * N_IN + k] : ys[sample * N_OUT + (k - N_IN)];
            top->PORT(i_stream, payload) = static_cast<uint64_t>(value) & mask(SAMPLE_BITS);
        }
        half(s, 0);
        const bool accepted = have && top->PORT(i_stream, ready);
        if (top->PORT(o_stream, valid)) {
            const uint64_t payload = top->PORT(o_stream, payload);
            predictions[received] = sign_extend(payload, ACT_BITS);
            errors[received] = sign_extend(payload >> ACT_BITS, ERR_BITS);
            received++;
            quiet = 0;
        } else if (++quiet > limit) {
            top->PORT(i_stream, valid) = 0;
            top->PORT(o_stream, ready) = 0;
            return -1;
        }
        half(s, 1);
        s->cycles++;
        if (accepted) sent++;
    }
    top->PORT(i_stream, valid) = 0;
    top->PORT(o_stream, ready) = 0;
    half(s, 0);
    // The last sample's update pass runs on after its results are out.
    return wait_idle(s, limit) ? received : -1;
}

int nf_wait_idle(void* handle, uint64_t limit) { return wait_idle(static_cast<Sim*>(handle), limit); }

// Read rows x cols weight accumulators of one layer (row-major) into out: one read a cycle,
// the answers arrive in order with rvalid, the core's read latency later.
int nf_read_weights(void* handle, int layer, int rows, int cols, int64_t* out) {
    auto* s = static_cast<Sim*>(handle);
    auto* top = s->top.get();
    const int total = rows * cols;
    int next = 0;
    auto collect = [&]() {
        if (top->PORT(weights, rvalid) && next < total) out[next++] = sign_extend(top->PORT(weights, rdata), ACC_BITS);
    };
    int ok = for_each_weight(s, layer, rows, cols, [&](int, int) {
        collect();
        top->PORT(weights, read) = 1;
    });
    for (int k = 0; ok && next < total; k++) {
        if (k > 64) return 0;                // the answers stopped coming
        collect();
        tick(s);
    }
    return ok;
}

int nf_write_weights(void* handle, int layer, int rows, int cols, const int64_t* values) {
    auto* s = static_cast<Sim*>(handle);
    auto* top = s->top.get();
    return for_each_weight(s, layer, rows, cols, [&](int j, int i) {
        top->PORT(weights, wdata) = static_cast<uint64_t>(values[j * cols + i]) & mask(ACC_BITS);
        top->PORT(weights, write) = 1;
    });
}

// Zero momentum and batch sums, reset the LFSR and the counters.
int nf_clear(void* handle) {
    auto* s = static_cast<Sim*>(handle);
    if (!wait_idle(s, 1u << 30)) return 0;
    s->top->clear = 1;
    half(s, 0);
    tick(s);
    s->top->clear = 0;
    half(s, 0);
    return wait_idle(s, 1u << 30);
}

}  // extern "C"
