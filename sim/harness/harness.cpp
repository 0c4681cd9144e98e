// Verilator harness for `lela_accelerator` (docs/HOST_INTERFACE.md, "The simulation harness").
//
// Runs the design with a weight-memory model (memory_model.h) and host byte streams
// (byte_pipes.h), and talks to Python over stdin/stdout, so Python never wakes per cycle. Built
// by sim/harness.py (`build_harness`), which writes harness_config.h (ADDR_BITS, LEN_BITS,
// WORD_BITS, MEM_WORDS) into the build directory.
//
// Requests (little endian):
//   0x01 EXCHANGE u32 n_bytes, u32 n_frames, u64 max_cycles, bytes
//        -> u8 status (0 done, 1 timeout), u64 cycle, u32 n, n bytes that left tx
//   0x02 STATS -> u64 cycle, words_read, words_written, rx_bytes, tx_bytes
//   0x03 QUIT  -> exit 0
// EXCHANGE is done when n_frames complete frames have left tx since the request began; with
// n_frames = 0, once every byte has been taken by rx. Bytes not yet taken when a request ends
// stay queued for the next one; a frame split across requests is counted when it completes.
// The write log is flushed before each reply.
//
// Errors (out-of-range access, zero-length burst, malformed request, bad option): one line on
// stderr, exit code 2. The design's own $display output goes to stderr: stdout carries only the
// protocol.

#include "harness_config.h"

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <unistd.h>
#include <vector>

#include "byte_pipes.h"
#include "common.h"
#include "memory_model.h"
#include "ports.h"
#include "rng.h"
#include "sim_top.h"

static_assert(WORD_BITS >= 1 && WORD_BITS <= 4096, "WORD_BITS out of range");

using namespace harness;

static SimTop* g_sim;
static Rng g_rng;
static MemoryModel g_mem;
static StreamPipes g_pipes;
static uint64_t g_cycle;
static int g_proto_out = 1;

static void finish_outputs() {
    if (g_mem.write_log) std::fflush(g_mem.write_log);
    if (g_sim) g_sim->close_trace();
}

// One clock cycle: choose the harness's inputs, settle, sample the handshakes, clock edge,
// update the models.
static inline void step() {
    Vtop* t = g_sim->top;
    g_pipes.drive(t, g_rng);
    g_mem.drive(t, g_rng);
    t->clk = 0;
    g_sim->eval_dump();
    g_pipes.sample(t);
    g_mem.sample(t);
    t->clk = 1;
    g_sim->eval_dump();
    g_pipes.update();
    g_mem.update(g_cycle);
    g_cycle++;
}

// ---- stdin/stdout ------------------------------------------------------------------------

// Reads exactly n bytes; false on EOF before the first byte when eof_ok, dies otherwise.
static bool read_full(void* buf, size_t n, bool eof_ok) {
    uint8_t* p = (uint8_t*)buf;
    size_t got = 0;
    while (got < n) {
        ssize_t k = ::read(0, p + got, n - got);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) die("reading stdin: %s", std::strerror(errno));
        if (k == 0) {
            if (got == 0 && eof_ok) return false;
            die("malformed request: stdin ended inside a request");
        }
        got += (size_t)k;
    }
    return true;
}

static void write_full(const std::vector<uint8_t>& buf) {
    size_t done = 0;
    while (done < buf.size()) {
        ssize_t k = ::write(g_proto_out, buf.data() + done, buf.size() - done);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) die("writing stdout: %s", std::strerror(errno));
        done += (size_t)k;
    }
}

static inline uint32_t le32(const uint8_t* p) {
    return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t le64(const uint8_t* p) { return le32(p) | (uint64_t)le32(p + 4) << 32; }
static inline void put_le(std::vector<uint8_t>& v, uint64_t x, int n) {
    for (int i = 0; i < n; i++) v.push_back((uint8_t)(x >> (8 * i)));
}

static void do_exchange() {
    uint8_t hdr[16];
    read_full(hdr, 16, false);
    uint32_t n_bytes = le32(hdr), n_frames = le32(hdr + 4);
    uint64_t max_cycles = le64(hdr + 8);
    uint8_t* fresh = g_pipes.append(n_bytes);
    if (n_bytes) read_full(fresh, n_bytes, false);

    g_pipes.out.clear();
    const uint64_t target = g_pipes.tx_frames.frames + n_frames;
    uint64_t ran = 0;
    uint8_t status = 0;
    for (;;) {
        if (g_pipes.tx_frames.frames >= target && (n_frames || g_pipes.rx_drained())) break;
        if (ran >= max_cycles) {
            status = 1;
            break;
        }
        step();
        ran++;
    }
    if (g_mem.write_log) std::fflush(g_mem.write_log);
    g_sim->flush_trace();
    std::vector<uint8_t> resp;
    resp.reserve(13 + g_pipes.out.size());
    resp.push_back(status);
    put_le(resp, g_cycle, 8);
    put_le(resp, g_pipes.out.size(), 4);
    resp.insert(resp.end(), g_pipes.out.begin(), g_pipes.out.end());
    write_full(resp);
}

static void do_stats() {
    std::vector<uint8_t> resp;
    put_le(resp, g_cycle, 8);
    put_le(resp, g_mem.words_read, 8);
    put_le(resp, g_mem.words_written, 8);
    put_le(resp, g_pipes.rx_bytes, 8);
    put_le(resp, g_pipes.tx_bytes, 8);
    write_full(resp);
}

// ---- main ---------------------------------------------------------------------------------

int main(int argc, char** argv) {
    name() = "lela harness";
    set_die_hook(finish_outputs);
    uint64_t seed = 1;
    const char* vcd_path = nullptr;
    const char* wlog_path = nullptr;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        if (a == "--help" || a == "-h") {
            std::fprintf(stderr,
                         "usage: %s [--seed N] [--read-latency MAX] [--stall P] [--rx-stall P] "
                         "[--tx-stall P] [--vcd FILE] [--write-log FILE]\n"
                         "binary protocol on stdin/stdout: docs/HOST_INTERFACE.md\n",
                         argv[0]);
            return 0;
        }
        if (i + 1 >= argc) die("option %s needs a value (or is unknown)", argv[i]);
        const char* v = argv[++i];
        if (a == "--seed") seed = parse_uint("--seed", v);
        else if (a == "--read-latency") {
            uint64_t l = parse_uint("--read-latency", v);
            if (l > 0xFFFFFFFFull) die("--read-latency %s too large", v);
            g_mem.read_latency = (uint32_t)l;
        } else if (a == "--stall") g_mem.stall = prob_threshold(parse_prob("--stall", v));
        else if (a == "--rx-stall") g_pipes.rx_stall = prob_threshold(parse_prob("--rx-stall", v));
        else if (a == "--tx-stall") g_pipes.tx_stall = prob_threshold(parse_prob("--tx-stall", v));
        else if (a == "--vcd") vcd_path = v;
        else if (a == "--write-log") wlog_path = v;
        else die("unknown option %s", argv[i - 1]);
    }
    if (vcd_path && !kCanTrace)
        die("--vcd needs a harness built with tracing (build_harness(..., trace=True): "
            "verilator --trace, -DLELA_TRACE)");
    g_rng.seed(seed);

    // The protocol keeps the real stdout; anything the design prints goes to stderr.
    g_proto_out = dup(1);
    if (g_proto_out < 0 || dup2(2, 1) < 0) die("cannot redirect stdout: %s", std::strerror(errno));

    if (wlog_path) {
        g_mem.write_log = std::fopen(wlog_path, "ab");
        if (!g_mem.write_log)
            die("cannot open write log %s: %s", wlog_path, std::strerror(errno));
        static char wbuf[1 << 16];
        std::setvbuf(g_mem.write_log, wbuf, _IOFBF, sizeof wbuf);
    }

    g_sim = new SimTop(5);
    g_sim->open(vcd_path);
    // Reset: rst high for 4 cycles, every harness-driven valid/ready low.
    g_sim->reset(4);

    for (;;) {
        uint8_t op;
        if (!read_full(&op, 1, true)) break;  // stdin closed: as QUIT
        if (op == 0x01) do_exchange();
        else if (op == 0x02) do_stats();
        else if (op == 0x03) break;
        else die("malformed request: unknown request byte 0x%02x", op);
    }
    g_sim->finish();
    finish_outputs();
    delete g_sim;
    return 0;
}
