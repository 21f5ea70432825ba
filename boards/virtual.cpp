// The virtual board: the board top in Verilator, its UART bridged to a TCP socket.
//
//   nfloop_virtual_board [--port P] [--host ADDR] [--idle-timeout S] [--trace FILE.vcd]
//
// Prints "listening on ADDR:PORT" once the socket is open (port 0 picks a free
// one), then serves one client at a time; the device keeps its state between
// clients, as a board does between serial sessions. Bytes from the client are
// sent to the top's rx pin bit by bit and its tx pin is decoded back into
// bytes, so the gateware's own UART is in the loop. While the top reports
// `idle` and no byte is on its way, the clock stops and the bridge sleeps on
// the socket; otherwise simulated time runs, and a frame that stops arriving
// times out in the gateware as it would on a board.
//
// Between clients the clock runs on, as a board's does: when a client leaves,
// the bytes it sent are delivered, the rx line then stays idle, and the board
// runs until the top is idle and both UARTs are quiet (a half-received
// frame times out, a running TRAIN ends). What it sent meanwhile is dropped, so
// every new client finds the board idle with nothing in flight. A second client
// while one is connected gets one line of text ("virtual board: busy ...") once
// it has sent its first request, and is closed; a client that sends nothing for --idle-timeout seconds (default
// 600) while the board is idle is disconnected.
//
// Compile-time constants (-D): BIT_PERIOD (clock cycles per UART bit), TRACE (0 or 1: VCD).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <sys/prctl.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <chrono>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "Vnfloop_board.h"
#include "verilated.h"
#if TRACE
#include "verilated_vcd_c.h"
#endif

namespace {

struct Board {
    std::unique_ptr<VerilatedContext> context{new VerilatedContext};
    std::unique_ptr<Vnfloop_board> top{new Vnfloop_board{context.get()}};
#if TRACE
    std::unique_ptr<VerilatedVcdC> trace;
    std::string trace_path;
    long long trace_limit = 0;      // bytes; 0: no limit
    long long first_step = 0, last_step = -1;   // --trace-steps: record while the step count is in it
#endif
    uint64_t cycles = 0;
    double busy = 0;                // seconds spent simulating cycles

    // Stop recording once the waveform file passes --trace-limit (checked every 1024 cycles).
    void check_trace_size() {
#if TRACE
        struct stat info;
        if (!trace || trace_limit <= 0 || stat(trace_path.c_str(), &info) != 0) return;
        if (info.st_size < trace_limit) return;
        trace->close();
        trace.reset();
        std::fprintf(stderr, "virtual board: the waveform reached %lld MB (--trace-limit): recording stopped\n",
                     static_cast<long long>(info.st_size) / 1000000);
#endif
    }

    void half(int clk) {
        top->clk = clk;
        top->eval();
#if TRACE
        if (trace && (last_step < 0 || (first_step <= top->steps && top->steps <= last_step)))
            trace->dump(context->time());
        context->timeInc(1);
#endif
    }
    void tick() {
        half(1);
        cycles++;
        half(0);
        if ((cycles & 0x3FF) == 0) check_trace_size();
    }
};

// Host -> device: one byte at a time on rx, start bit, 8 data bits LSB first, stop bit.
struct Sender {
    std::deque<uint8_t> queue;
    int bit = -1;            // -1: line idle; 0: start bit; 1..8: data; 9: stop
    int count = 0;
    uint8_t byte = 0;

    bool busy() const { return bit >= 0 || !queue.empty(); }
    int line() {             // the rx level for this cycle
        if (bit < 0) {
            if (queue.empty()) return 1;
            byte = queue.front();
            queue.pop_front();
            bit = 0;
            count = 0;
        }
        int level = bit == 0 ? 0 : bit <= 8 ? (byte >> (bit - 1)) & 1 : 1;
        if (++count == BIT_PERIOD) {
            count = 0;
            if (++bit == 10) bit = -1;
        }
        return level;
    }
};

// Device -> host: finds the start bit on tx and samples each bit in its middle.
struct Receiver {
    int bit = -1;
    int count = 0;
    int shift = 0;

    bool busy() const { return bit >= 0; }
    // Returns a byte (0..255) when one completes, else -1.
    int sample(int level) {
        if (bit < 0) {
            if (level == 0) {
                bit = 0;
                count = BIT_PERIOD / 2;
            }
            return -1;
        }
        if (--count > 0) return -1;
        count = BIT_PERIOD;
        if (bit >= 1 && bit <= 8) shift |= level << (bit - 1);
        if (++bit == 10) {
            int byte = shift;
            bit = -1;
            shift = 0;
            return level ? byte : -1;    // a missing stop bit drops the byte
        }
        return -1;
    }
};

void die(const char* what) {
    std::fprintf(stderr, "virtual board: %s: %s\n", what, std::strerror(errno));
    std::exit(1);
}

bool send_all(int fd, const std::vector<uint8_t>& data) {
    size_t done = 0;
    while (done < data.size()) {
        ssize_t n = send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
        if (n <= 0) return false;
        done += n;
    }
    return true;
}

const char BUSY[] = "virtual board: busy: another client is connected; one client at a time\n";

// Refused connections. Each is told so in one line once its client has sent something (or after a
// second): a client drops whatever arrives before its first request as stale input, so the line
// must come after it. The line's end follows (FIN), and the socket is closed once its client has
// closed (or after a few seconds): a socket closed with the client's request unread would answer it
// with a reset, and a reset makes the client's system drop the busy line before the client reads it.
struct Refused {
    int fd;
    bool told;
    std::chrono::steady_clock::time_point tell_by, until;
};
std::vector<Refused> refused;

void tell_busy(Refused& r) {
    send(r.fd, BUSY, sizeof BUSY - 1, MSG_NOSIGNAL);
    shutdown(r.fd, SHUT_WR);
    r.told = true;
}

// Reads and drops what refused clients sent, tells each it is refused once it has spoken; closes
// those that have closed, failed or outstayed.
void reap_refused() {
    uint8_t buffer[256];
    auto now = std::chrono::steady_clock::now();
    refused.erase(std::remove_if(refused.begin(), refused.end(), [&](Refused& r) {
        for (;;) {
            ssize_t n = recv(r.fd, buffer, sizeof buffer, MSG_DONTWAIT);
            if (n > 0) {
                if (!r.told) tell_busy(r);
                continue;
            }
            if (!r.told && now > r.tell_by) tell_busy(r);
            bool done = n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) || now > r.until;
            if (done) {
                if (!r.told) tell_busy(r);
                close(r.fd);
            }
            return done;
        }
    }), refused.end());
}

// A connection waiting on the listener while a client is served: kept until reap_refused tells it.
void refuse(int listener) {
    int other = accept(listener, nullptr, nullptr);
    if (other < 0) return;
    auto now = std::chrono::steady_clock::now();
    refused.push_back({other, false, now + std::chrono::seconds(1), now + std::chrono::seconds(5)});
}

// The board's line and clock, shared by a client's session and the time between clients.
struct Line {
    Sender sender;
    Receiver receiver;
    std::vector<uint8_t> out;

    bool quiet(Board& board) const {
        return board.top->idle && !sender.busy() && !receiver.busy() && board.top->tx;
    }
    void run(Board& board, int cycles) {
        const auto began = std::chrono::steady_clock::now();
        for (int k = 0; k < cycles; k++) {
            board.top->rx = sender.line();
            board.tick();
            int byte = receiver.sample(board.top->tx);
            if (byte >= 0) out.push_back(static_cast<uint8_t>(byte));
        }
        board.busy += std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
    }
};

// Serves one client until it disconnects or stays idle past idle_ms; refuses others meanwhile.
void serve(Board& board, Line& line, int fd, int listener, long long idle_ms) {
    uint8_t buffer[4096];
    const int poll_every = 64 * BIT_PERIOD;
    long long waited = 0;
    for (;;) {
        if (!refused.empty()) reap_refused();
        bool quiet = line.quiet(board);
        if (quiet && !line.out.empty()) {
            if (!send_all(fd, line.out)) return;
            line.out.clear();
        }
        pollfd p[2] = {{fd, POLLIN, 0}, {listener, POLLIN, 0}};
        int wait_ms = quiet ? (idle_ms > 0 ? static_cast<int>(std::min(idle_ms - waited, 1000LL)) : 1000) : 0;
        // a refused client waiting for its line is looked at every 20 ms
        if (std::any_of(refused.begin(), refused.end(), [](const Refused& r) { return !r.told; }))
            wait_ms = std::min(wait_ms, 20);
        int ready = poll(p, 2, wait_ms);
        if (ready < 0 && errno != EINTR) die("poll");
        if (ready > 0 && (p[1].revents & POLLIN)) {
            // someone else is knocking: take everything the client has sent; if it has gone, serve
            // the newcomer next, else refuse it
            for (;;) {
                ssize_t n = recv(fd, buffer, sizeof buffer, MSG_DONTWAIT);
                if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) return;
                if (n < 0) break;
                line.sender.queue.insert(line.sender.queue.end(), buffer, buffer + n);
                waited = 0;
            }
            refuse(listener);
        }
        if (ready > 0 && (p[0].revents & (POLLIN | POLLHUP | POLLERR))) {
            ssize_t n = recv(fd, buffer, sizeof buffer, MSG_DONTWAIT);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) return;
            if (n > 0) line.sender.queue.insert(line.sender.queue.end(), buffer, buffer + n);
            waited = 0;
        } else if (quiet && line.sender.queue.empty()) {
            waited += wait_ms;
            if (idle_ms > 0 && waited >= idle_ms) {
                std::fprintf(stderr, "virtual board: the client sent nothing for %lld s: disconnected\n",
                             idle_ms / 1000);
                return;
            }
            continue;
        }
        line.run(board, poll_every);
        if (line.out.size() >= 1024) {
            if (!send_all(fd, line.out)) return;
            line.out.clear();
        }
    }
}

// After a client: deliver what it sent (as a serial bridge would), keep rx idle after it, run until the
// board is quiet, and drop the board's output. A new client waits in the listener's backlog meanwhile.
void settle(Board& board, Line& line) {
    while (!line.quiet(board)) line.run(board, 64 * BIT_PERIOD);
    line.out.clear();
}

}  // namespace

int main(int argc, char** argv) {
    // The board lives as long as the process that started it: a killed serve-sim or test leaves
    // no simulator behind holding its port.
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() == 1) return 0;       // the parent died before prctl took effect
    int port = 0;
    std::string host = "127.0.0.1";
    const char* trace_path = nullptr;
    long long trace_limit = 0, first_step = 0, last_step = -1, idle_ms = 600000;
    for (int i = 1; i < argc; i++) {
        std::string arg = argv[i];
        if (arg == "--port" && i + 1 < argc) port = std::atoi(argv[++i]);
        else if (arg == "--host" && i + 1 < argc) host = argv[++i];
        else if (arg == "--trace" && i + 1 < argc) trace_path = argv[++i];
        else if (arg == "--idle-timeout" && i + 1 < argc) idle_ms = std::atoll(argv[++i]) * 1000;
        else if (arg == "--trace-limit" && i + 1 < argc) trace_limit = std::atoll(argv[++i]);
        else if (arg == "--trace-steps" && i + 1 < argc &&
                 std::sscanf(argv[++i], "%lld:%lld", &first_step, &last_step) == 2) {}
        else {
            std::fprintf(stderr, "usage: %s [--port P] [--host ADDR] [--idle-timeout S] [--trace FILE.vcd] [--trace-limit BYTES] "
                                 "[--trace-steps FIRST:LAST]\n", argv[0]);
            return 2;
        }
    }
    Board board;
#if TRACE
    if (trace_path) {
        board.context->traceEverOn(true);
        board.trace.reset(new VerilatedVcdC);
        board.top->trace(board.trace.get(), 99);
        board.trace->open(trace_path);
        board.trace_path = trace_path;
        board.trace_limit = trace_limit;
        board.first_step = first_step;
        board.last_step = last_step;
    }
#else
    if (trace_path) {
        std::fprintf(stderr, "virtual board: built without tracing\n");
        return 2;
    }
#endif
    board.top->rx = 1;
    board.top->rst = 1;
    for (int k = 0; k < 4; k++) board.tick();
    board.top->rst = 0;
    board.tick();

    int listener = socket(AF_INET, SOCK_STREAM, 0);
    if (listener < 0) die("socket");
    int yes = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    if (inet_pton(AF_INET, host.c_str(), &address.sin_addr) != 1) {
        std::fprintf(stderr, "virtual board: %s is not an IPv4 address\n", host.c_str());
        return 2;
    }
    if (bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address) < 0) die("bind");
    if (listen(listener, 4) < 0) die("listen");
    socklen_t size = sizeof address;
    getsockname(listener, reinterpret_cast<sockaddr*>(&address), &size);
    std::printf("listening on %s:%d\n", host.c_str(), ntohs(address.sin_port));
    std::fflush(stdout);
    signal(SIGPIPE, SIG_IGN);
    Line line;
    for (;;) {
        int client = accept(listener, nullptr, nullptr);
        if (client < 0) {
            if (errno == EINTR) continue;
            die("accept");
        }
        setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof yes);
        const uint64_t first_cycle = board.cycles;
        const double busy_before = board.busy;
        serve(board, line, client, listener, idle_ms);
        close(client);
        reap_refused();
        settle(board, line);
        // the simulation's speed for this client: its cycles over the time spent simulating them
        const double seconds = board.busy - busy_before;
        const uint64_t cycles = board.cycles - first_cycle;
        std::fprintf(stderr, "virtual board: %llu cycles simulated in %.1f s for the last client (%.0f cycles/s)\n",
                     static_cast<unsigned long long>(cycles), seconds, seconds > 0 ? cycles / seconds : 0.0);
#if TRACE
        if (board.trace) board.trace->flush();
#endif
    }
}
