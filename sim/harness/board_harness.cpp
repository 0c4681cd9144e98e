// The board path in simulation: `lela_board` (UART receiver, accelerator, UART transmitter,
// on-chip weights) clocked by Verilator, its UART pins bridged to a pseudo-terminal so that the
// host's serial transport (pyserial) talks to it exactly as to a board.
//
//   lela_board_harness [--flip N] [--drop N] [--vcd FILE]
//
// prints the pseudo-terminal's path on stdout, then runs until killed or until stdin closes.
// --flip N flips bit 4 of the N-th byte (0-based) the host sends; --drop N drops it.
#include "Vtop.h"
#include "verilated.h"
#ifdef LELA_TRACE
#include "verilated_vcd_c.h"
#endif
#include "board_config.h"   // DIVISOR

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fcntl.h>
#include <poll.h>
#include <string>
#include <termios.h>
#include <unistd.h>
#include <vector>

static void die(const char *what) {
    fprintf(stderr, "lela_board_harness: %s: %s\n", what, strerror(errno));
    exit(2);
}

int main(int argc, char **argv) {
    long long flip_at = -1, drop_at = -1;
    const char *vcd = nullptr;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        if (a == "--flip" && i + 1 < argc) flip_at = atoll(argv[++i]);
        else if (a == "--drop" && i + 1 < argc) drop_at = atoll(argv[++i]);
        else if (a == "--vcd" && i + 1 < argc) vcd = argv[++i];
        else { fprintf(stderr, "lela_board_harness: unknown option %s\n", a.c_str()); return 2; }
    }
    int master = posix_openpt(O_RDWR | O_NOCTTY);
    if (master < 0 || grantpt(master) || unlockpt(master)) die("posix_openpt");
    const char *name = ptsname(master);
    if (!name) die("ptsname");
    int slave = open(name, O_RDWR | O_NOCTTY);   // kept open: no EIO between client sessions
    if (slave < 0) die("open slave");
    struct termios t;
    if (tcgetattr(slave, &t)) die("tcgetattr");
    cfmakeraw(&t);
    if (tcsetattr(slave, TCSANOW, &t)) die("tcsetattr");
    fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
    fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
    printf("%s\n", name);
    fflush(stdout);

    VerilatedContext ctx;
    Vtop top(&ctx);
#ifdef LELA_TRACE
    VerilatedVcdC *trace = nullptr;
    if (vcd) { ctx.traceEverOn(true); trace = new VerilatedVcdC; top.trace(trace, 99); trace->open(vcd); }
#else
    if (vcd) { fprintf(stderr, "lela_board_harness: built without tracing\n"); return 2; }
#endif
    unsigned long long cycle = 0;
    auto tick = [&]() {
        top.clk = 0; top.eval();
#ifdef LELA_TRACE
        if (trace) trace->dump(2 * cycle);
#endif
        top.clk = 1; top.eval();
#ifdef LELA_TRACE
        if (trace) trace->dump(2 * cycle + 1);
#endif
        cycle++;
    };
    top.rx = 1;
    top.rst = 1;
    for (int i = 0; i < 8; i++) tick();
    top.rst = 0;

    std::deque<unsigned char> to_device;
    long long host_bytes = 0;
    // Host -> device serializer: 10 bits of DIVISOR cycles each.
    int tx_bit = -1, tx_count = 0;
    unsigned char tx_byte = 0;
    // Device -> host deserializer.
    int rx_bit = -1, rx_count = 0;
    unsigned rx_shift = 0;
    std::vector<unsigned char> out;
    unsigned char buf[4096];
    for (;;) {
        if ((cycle & 255) == 0) {
            ssize_t n = read(master, buf, sizeof buf);
            for (ssize_t i = 0; i < n; i++) {
                unsigned char b = buf[i];
                long long k = host_bytes++;
                if (k == drop_at) continue;
                if (k == flip_at) b ^= 0x10;
                to_device.push_back(b);
            }
            if (!out.empty()) {
                ssize_t w = write(master, out.data(), out.size());
                if (w > 0) out.erase(out.begin(), out.begin() + w);
            }
            if ((cycle & 0xFFFF) == 0) {
                ssize_t r = read(0, buf, sizeof buf);
                if (r == 0) break;                         // stdin closed: the host is done
            }
            if (to_device.empty() && tx_bit < 0 && rx_bit < 0 && out.empty()
                && (cycle & 0x3FFFF) == 0) {
                struct pollfd p = {master, POLLIN, 0};
                poll(&p, 1, 0);
            }
        }
        // Drive rx.
        if (tx_bit < 0 && !to_device.empty()) {
            tx_byte = to_device.front();
            to_device.pop_front();
            tx_bit = 0;
            tx_count = 0;
        }
        if (tx_bit >= 0) {
            int level = tx_bit == 0 ? 0 : tx_bit <= 8 ? (tx_byte >> (tx_bit - 1)) & 1 : 1;
            top.rx = level;
            if (++tx_count == DIVISOR) {
                tx_count = 0;
                if (++tx_bit == 10) tx_bit = -1;
            }
        } else {
            top.rx = 1;
        }
        tick();
        // Sample tx.
        if (rx_bit < 0) {
            if (!top.tx) { rx_bit = 0; rx_count = 0; rx_shift = 0; }
        } else if (++rx_count == (rx_bit == 0 ? DIVISOR / 2 : DIVISOR)) {
            rx_count = 0;
            if (rx_bit == 0) {
                if (top.tx) rx_bit = -1;                   // a glitch, not a start bit
                else rx_bit = 1;
            } else if (rx_bit <= 8) {
                rx_shift |= (unsigned)top.tx << (rx_bit - 1);
                rx_bit++;
            } else {
                if (top.tx) out.push_back((unsigned char)rx_shift);
                rx_bit = -1;
            }
        }
    }
#ifdef LELA_TRACE
    if (trace) trace->close();
#endif
    return 0;
}
