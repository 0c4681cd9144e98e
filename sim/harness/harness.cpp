// Verilator harness for `lela_accelerator` (docs/HOST_INTERFACE.md, "The simulation harness").
//
// Runs the design with a weight-memory model and talks to Python over stdin/stdout, so Python
// never wakes per cycle. Built by sim/harness.py (`build_harness`), which writes
// harness_config.h (ADDR_BITS, LEN_BITS, WORD_BITS, MEM_WORDS) into the build directory.
//
// Requests (little endian):
//   0x01 EXCHANGE u32 n_bytes, u32 n_frames, u64 max_cycles, bytes
//        -> u8 status (0 done, 1 timeout), u64 cycle, u32 n, n bytes that left tx
//   0x02 STATS -> u64 cycle, words_read, words_written, rx_bytes, tx_bytes
//   0x03 QUIT  -> exit 0
// EXCHANGE is done when n_frames complete frames (SYNC 0xA5, cmd, u16 len, payload, crc: 5+len
// bytes from the SYNC; bytes before a SYNC skipped) have left tx since the request began; with
// n_frames = 0, once every byte has been taken by rx. Bytes not yet taken when a request ends
// stay queued for the next one; a frame split across requests is counted when it completes.
//
// Memory model: MEM_WORDS words, zero at start. Read and write sides are independent. Read
// commands are served in order; each burst waits a random 0..--read-latency cycles before its
// first beat. A channel stalls (r.valid, ar.ready, aw.ready, w.ready low) in a cycle with
// probability --stall. w.ready is high only while an accepted write command has beats left.
// Valids the harness drives (rx, r) are raised at random (--rx-stall, --stall) but, once raised,
// stay high with a stable payload until taken, as a stream source must.
//
// Errors (out-of-range access, zero-length burst, malformed request, bad option): one line on
// stderr, exit code 2. The design's own $display output goes to stderr: stdout carries only the
// protocol.

#include "harness_config.h"
#include "Vtop.h"
#include "verilated.h"
#ifdef LELA_TRACE
#include "verilated_vcd_c.h"
#endif

#include <cerrno>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <string>
#include <unistd.h>
#include <vector>

static_assert(WORD_BITS >= 1 && WORD_BITS <= 4096, "WORD_BITS out of range");
static_assert(ADDR_BITS >= 1 && ADDR_BITS <= 32, "ADDR_BITS must be 1..32 (u32 word addresses)");
static_assert(LEN_BITS == 16, "the bus length field is 16 bits");
static_assert((uint64_t)MEM_WORDS <= (1ull << ADDR_BITS), "MEM_WORDS exceeds the address space");

static constexpr int WORD_BYTES = (WORD_BITS + 7) / 8;

// Verilator escapes "__" in identifiers as "___05F": port `rx__valid` is `rx___05Fvalid`.
#define P_RX_VALID rx___05Fvalid
#define P_RX_READY rx___05Fready
#define P_RX_PAYLOAD rx___05Fpayload
#define P_TX_VALID tx___05Fvalid
#define P_TX_READY tx___05Fready
#define P_TX_PAYLOAD tx___05Fpayload
#define P_AR_VALID mem___05Far___05Fvalid
#define P_AR_READY mem___05Far___05Fready
#define P_AR_PAYLOAD mem___05Far___05Fpayload
#define P_R_VALID mem___05Fr___05Fvalid
#define P_R_READY mem___05Fr___05Fready
#define P_R_PAYLOAD mem___05Fr___05Fpayload
#define P_AW_VALID mem___05Faw___05Fvalid
#define P_AW_READY mem___05Faw___05Fready
#define P_AW_PAYLOAD mem___05Faw___05Fpayload
#define P_W_VALID mem___05Fw___05Fvalid
#define P_W_READY mem___05Fw___05Fready
#define P_W_PAYLOAD mem___05Fw___05Fpayload

// ---- port access for any Verilator width (CData/SData/IData/QData or VlWide<N>) ----------

template <typename T>
static inline void put_word(T& port, const uint8_t* src) {
    static_assert(sizeof(T) * 8 >= WORD_BITS, "port narrower than WORD_BITS");
    uint64_t v = 0;
    std::memcpy(&v, src, WORD_BYTES);  // little-endian host
    port = (T)v;
}
template <std::size_t N>
static inline void put_word(VlWide<N>& port, const uint8_t* src) {
    std::memset(port.data(), 0, N * sizeof(EData));
    std::memcpy(port.data(), src, WORD_BYTES);
}
template <typename T>
static inline void get_word(const T& port, uint8_t* dst) {
    uint64_t v = (uint64_t)port;
    std::memcpy(dst, &v, WORD_BYTES);
}
template <std::size_t N>
static inline void get_word(const VlWide<N>& port, uint8_t* dst) {
    std::memcpy(dst, port.data(), WORD_BYTES);
}
// `n` (<= 32) bits from bit `lo`.
template <typename T>
static inline uint32_t get_bits(const T& port, int lo, int n) {
    return (uint32_t)(((uint64_t)port >> lo) & ((1ull << n) - 1));
}
template <std::size_t N>
static inline uint32_t get_bits(const VlWide<N>& port, int lo, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++) {
        int b = lo + i;
        v |= (uint64_t)((port.data()[b / 32] >> (b % 32)) & 1u) << i;
    }
    return (uint32_t)v;
}

// ---- globals ------------------------------------------------------------------------------

static VerilatedContext* g_ctx;
static Vtop* g_top;
#ifdef LELA_TRACE
static VerilatedVcdC* g_vcd;
#endif
static uint64_t g_time;
static FILE* g_wlog;
static int g_proto_out = 1;
static uint64_t g_cycle;

static void finish_outputs() {
    if (g_wlog) std::fflush(g_wlog);
#ifdef LELA_TRACE
    if (g_vcd) g_vcd->close();
#endif
}

[[noreturn]] static void die(const char* fmt, ...) {
    finish_outputs();
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    std::fprintf(stderr, "lela harness: %s\n", msg);
    std::fflush(stderr);
    std::_Exit(2);
}

// ---- PRNG (xorshift64*) -------------------------------------------------------------------

static uint64_t g_rng;
static inline uint64_t rnd() {
    g_rng ^= g_rng >> 12;
    g_rng ^= g_rng << 25;
    g_rng ^= g_rng >> 27;
    return g_rng * 0x2545F4914F6CDD1Dull;
}
// threshold in units of 2^-32: true with probability thr / 2^32 (thr == 2^32: always).
static inline bool chance(uint64_t thr) { return thr && (rnd() >> 32) < thr; }
static uint64_t prob_threshold(double p) { return (uint64_t)(p * 4294967296.0 + 0.5); }

// ---- model state --------------------------------------------------------------------------

struct Burst {
    uint32_t addr;
    uint32_t left;
};

static std::vector<uint8_t> g_mem;
static std::deque<Burst> g_ar_q, g_aw_q;
static bool g_r_active;
static Burst g_r_cur;
static uint32_t g_r_wait;
static uint8_t g_r_valid;

static std::vector<uint8_t> g_rx;
static size_t g_rx_pos;
static uint8_t g_rx_valid;

static uint32_t g_fr_pos, g_fr_len;  // tx frame counter: bytes of the current frame seen
static uint64_t g_frames;            // frames completed (total)

static uint64_t g_words_read, g_words_written, g_rx_bytes, g_tx_bytes;

static uint32_t g_read_latency;
static uint64_t g_stall, g_rx_stall, g_tx_stall;

static std::vector<uint8_t> g_out;  // tx bytes of the current request

static inline void eval_dump() {
    g_top->eval();
#ifdef LELA_TRACE
    if (g_vcd) g_vcd->dump(g_time);
#endif
    g_time += 5;
}

static void check_burst(const char* what, uint32_t addr, uint32_t len) {
    if (len == 0) die("%s command with len 0 at address %u (cycle %llu)", what, addr,
                      (unsigned long long)g_cycle);
    if ((uint64_t)addr + len > (uint64_t)MEM_WORDS)
        die("%s command addr=%u len=%u outside the memory of %u words (cycle %llu)", what, addr,
            len, (unsigned)MEM_WORDS, (unsigned long long)g_cycle);
}

static inline void tx_byte(uint8_t b) {
    g_out.push_back(b);
    g_tx_bytes++;
    uint32_t i = g_fr_pos;
    if (i == 0) {
        if (b == 0xA5) g_fr_pos = 1;
        return;
    }
    if (i == 2) g_fr_len = b;
    else if (i == 3) g_fr_len |= (uint32_t)b << 8;
    g_fr_pos = i + 1;
    if (g_fr_pos >= 4 && g_fr_pos == 5 + g_fr_len) {
        g_frames++;
        g_fr_pos = 0;
    }
}

// One clock cycle: choose the harness's inputs, settle, sample the handshakes, clock edge,
// update the model.
static inline void step() {
    Vtop* t = g_top;
    // rx: raise valid at random while bytes wait; keep it until taken
    if (!g_rx_valid && g_rx_pos < g_rx.size() && !chance(g_rx_stall)) {
        g_rx_valid = 1;
        t->P_RX_PAYLOAD = g_rx[g_rx_pos];
    }
    t->P_RX_VALID = g_rx_valid;
    uint8_t tx_ready = !chance(g_tx_stall);
    t->P_TX_READY = tx_ready;
    // read side
    uint8_t ar_ready = !chance(g_stall);
    t->P_AR_READY = ar_ready;
    if (!g_r_valid) {
        if (!g_r_active && !g_ar_q.empty()) {
            g_r_cur = g_ar_q.front();
            g_ar_q.pop_front();
            g_r_active = true;
            g_r_wait = g_read_latency ? (uint32_t)(rnd() % ((uint64_t)g_read_latency + 1)) : 0;
        }
        if (g_r_active) {
            if (g_r_wait) {
                g_r_wait--;
            } else if (!chance(g_stall)) {
                g_r_valid = 1;
                put_word(t->P_R_PAYLOAD, &g_mem[(size_t)g_r_cur.addr * WORD_BYTES]);
            }
        }
    }
    t->P_R_VALID = g_r_valid;
    // write side
    uint8_t aw_ready = !chance(g_stall);
    t->P_AW_READY = aw_ready;
    uint8_t w_ready = !g_aw_q.empty() && !chance(g_stall);
    t->P_W_READY = w_ready;

    t->clk = 0;
    eval_dump();

    bool rx_fire = g_rx_valid && t->P_RX_READY;
    bool tx_fire = tx_ready && t->P_TX_VALID;
    uint8_t tx_b = (uint8_t)t->P_TX_PAYLOAD;
    bool ar_fire = ar_ready && t->P_AR_VALID;
    uint32_t ar_addr = 0, ar_len = 0;
    if (ar_fire) {
        ar_addr = get_bits(t->P_AR_PAYLOAD, 0, ADDR_BITS);
        ar_len = get_bits(t->P_AR_PAYLOAD, ADDR_BITS, LEN_BITS);
    }
    bool r_fire = g_r_valid && t->P_R_READY;
    bool aw_fire = aw_ready && t->P_AW_VALID;
    uint32_t aw_addr = 0, aw_len = 0;
    if (aw_fire) {
        aw_addr = get_bits(t->P_AW_PAYLOAD, 0, ADDR_BITS);
        aw_len = get_bits(t->P_AW_PAYLOAD, ADDR_BITS, LEN_BITS);
    }
    bool w_fire = w_ready && t->P_W_VALID;
    uint8_t w_data[WORD_BYTES];
    if (w_fire) get_word(t->P_W_PAYLOAD, w_data);

    t->clk = 1;
    eval_dump();

    if (rx_fire) {
        g_rx_pos++;
        g_rx_valid = 0;
        g_rx_bytes++;
    }
    if (tx_fire) tx_byte(tx_b);
    if (ar_fire) {
        check_burst("read", ar_addr, ar_len);
        g_ar_q.push_back(Burst{ar_addr, ar_len});
    }
    if (r_fire) {
        g_r_valid = 0;
        g_words_read++;
        g_r_cur.addr++;
        if (--g_r_cur.left == 0) g_r_active = false;
    }
    if (w_fire) {
        Burst& b = g_aw_q.front();
        std::memcpy(&g_mem[(size_t)b.addr * WORD_BYTES], w_data, WORD_BYTES);
        if (g_wlog) {
            uint8_t a[4] = {(uint8_t)b.addr, (uint8_t)(b.addr >> 8), (uint8_t)(b.addr >> 16),
                            (uint8_t)(b.addr >> 24)};
            std::fwrite(a, 1, 4, g_wlog);
            std::fwrite(w_data, 1, WORD_BYTES, g_wlog);
        }
        g_words_written++;
        b.addr++;
        if (--b.left == 0) g_aw_q.pop_front();
    }
    if (aw_fire) {
        check_burst("write", aw_addr, aw_len);
        g_aw_q.push_back(Burst{aw_addr, aw_len});
    }
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
    // keep the bytes not yet taken, then append the new ones
    g_rx.erase(g_rx.begin(), g_rx.begin() + (std::ptrdiff_t)g_rx_pos);
    g_rx_pos = 0;
    size_t old = g_rx.size();
    g_rx.resize(old + n_bytes);
    if (n_bytes) read_full(&g_rx[old], n_bytes, false);

    g_out.clear();
    const uint64_t target = g_frames + n_frames;
    uint64_t ran = 0;
    uint8_t status = 0;
    for (;;) {
        if (g_frames >= target && (n_frames || g_rx_pos == g_rx.size())) break;
        if (ran >= max_cycles) {
            status = 1;
            break;
        }
        step();
        ran++;
    }
    if (g_wlog) std::fflush(g_wlog);
#ifdef LELA_TRACE
    if (g_vcd) g_vcd->flush();
#endif
    std::vector<uint8_t> resp;
    resp.reserve(13 + g_out.size());
    resp.push_back(status);
    put_le(resp, g_cycle, 8);
    put_le(resp, g_out.size(), 4);
    resp.insert(resp.end(), g_out.begin(), g_out.end());
    write_full(resp);
}

static void do_stats() {
    std::vector<uint8_t> resp;
    put_le(resp, g_cycle, 8);
    put_le(resp, g_words_read, 8);
    put_le(resp, g_words_written, 8);
    put_le(resp, g_rx_bytes, 8);
    put_le(resp, g_tx_bytes, 8);
    write_full(resp);
}

// ---- options ------------------------------------------------------------------------------

static double parse_prob(const char* opt, const char* s) {
    char* end;
    double p = std::strtod(s, &end);
    if (*s == 0 || *end || !(p >= 0.0 && p <= 1.0)) die("%s wants a probability 0..1, got '%s'", opt, s);
    return p;
}
static uint64_t parse_uint(const char* opt, const char* s) {
    char* end;
    errno = 0;
    unsigned long long v = std::strtoull(s, &end, 0);
    if (*s == 0 || *end || *s == '-' || errno) die("%s wants a non-negative integer, got '%s'", opt, s);
    return v;
}

int main(int argc, char** argv) {
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
            g_read_latency = (uint32_t)l;
        } else if (a == "--stall") g_stall = prob_threshold(parse_prob("--stall", v));
        else if (a == "--rx-stall") g_rx_stall = prob_threshold(parse_prob("--rx-stall", v));
        else if (a == "--tx-stall") g_tx_stall = prob_threshold(parse_prob("--tx-stall", v));
        else if (a == "--vcd") vcd_path = v;
        else if (a == "--write-log") wlog_path = v;
        else die("unknown option %s", argv[i - 1]);
    }
#ifndef LELA_TRACE
    if (vcd_path)
        die("--vcd needs a harness built with tracing (build_harness(..., trace=True): "
            "verilator --trace, -DLELA_TRACE)");
#endif
    // splitmix64 of the seed: a nonzero xorshift state
    uint64_t z = seed + 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    g_rng = (z ^ (z >> 31)) | 1;

    // The protocol keeps the real stdout; anything the design prints goes to stderr.
    g_proto_out = dup(1);
    if (g_proto_out < 0 || dup2(2, 1) < 0) die("cannot redirect stdout: %s", std::strerror(errno));

    if (wlog_path) {
        g_wlog = std::fopen(wlog_path, "ab");
        if (!g_wlog) die("cannot open write log %s: %s", wlog_path, std::strerror(errno));
        static char wbuf[1 << 16];
        std::setvbuf(g_wlog, wbuf, _IOFBF, sizeof wbuf);
    }
    g_mem.assign((size_t)MEM_WORDS * WORD_BYTES, 0);

    g_ctx = new VerilatedContext;
    g_ctx->debug(0);
    g_ctx->randReset(0);
#ifdef LELA_TRACE
    if (vcd_path) g_ctx->traceEverOn(true);
#endif
    g_top = new Vtop{g_ctx};
#ifdef LELA_TRACE
    if (vcd_path) {
        g_vcd = new VerilatedVcdC;
        g_top->trace(g_vcd, 99);
        g_vcd->open(vcd_path);
        if (!g_vcd->isOpen()) die("cannot open VCD file %s", vcd_path);
    }
#endif

    // Reset: rst high for 4 cycles, every harness-driven valid/ready low.
    g_top->rst = 1;
    for (int i = 0; i < 4; i++) {
        g_top->clk = 0;
        eval_dump();
        g_top->clk = 1;
        eval_dump();
    }
    g_top->rst = 0;

    for (;;) {
        uint8_t op;
        if (!read_full(&op, 1, true)) break;  // stdin closed: as QUIT
        if (op == 0x01) do_exchange();
        else if (op == 0x02) do_stats();
        else if (op == 0x03) break;
        else die("malformed request: unknown request byte 0x%02x", op);
    }
    g_top->final();
    finish_outputs();
    delete g_top;
    delete g_ctx;
    return 0;
}
