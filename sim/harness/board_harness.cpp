// The board path in simulation: `lela_board` (UART receiver, accelerator, UART transmitter,
// on-chip weights) clocked by Verilator, its UART pins (uart_pins.h) bridged to a
// pseudo-terminal so that the host's serial transport (pyserial) talks to it exactly as to a
// board. Built by sim/board_sim.py (`build_board`), which writes board_config.h (DIVISOR_NUM
// and DIVISOR_DEN: the UART's cycles a bit, a fraction as in hw/uart.py;
// for a board with its weights in SDRAM also LELA_SDRAM, SDRAM_CLOCK_HZ and the part table:
// the device model then sits on the sdram__* pins, board_sdram.h, and the run ends with one
// line of its command counts on stderr).
//
//   lela_board_harness [--flip N] [--flip-bit B] [--drop N] [--vcd FILE]
//
// prints the pseudo-terminal's path on stdout, then runs until killed or until stdin closes.
// --flip N flips bit B (--flip-bit, 0..7, default 4) of the N-th byte (0-based) the host sends;
// --drop N drops it.
#include "board_config.h"  // DIVISOR_NUM, DIVISOR_DEN

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <string>
#include <termios.h>
#include <unistd.h>

#include "common.h"
#include "sim_top.h"
#include "uart_pins.h"
#ifdef LELA_SDRAM
#include "board_sdram.h"
#endif

using namespace harness;

// A pseudo-terminal whose far end (the path printed) is raw; its master is non-blocking.
static int open_pty() {
    int master = posix_openpt(O_RDWR | O_NOCTTY);
    if (master < 0 || grantpt(master) || unlockpt(master)) die("posix_openpt: %s", strerror(errno));
    const char* path = ptsname(master);
    if (!path) die("ptsname: %s", strerror(errno));
    int slave = open(path, O_RDWR | O_NOCTTY);  // kept open: no EIO between client sessions
    if (slave < 0) die("open slave: %s", strerror(errno));
    struct termios t;
    if (tcgetattr(slave, &t)) die("tcgetattr: %s", strerror(errno));
    cfmakeraw(&t);
    if (tcsetattr(slave, TCSANOW, &t)) die("tcsetattr: %s", strerror(errno));
    fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
    printf("%s\n", path);
    fflush(stdout);
    return master;
}

int main(int argc, char** argv) {
    name() = "lela_board_harness";
    long long flip_at = -1, drop_at = -1;
    int flip_bit = 4;
    const char* vcd = nullptr;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        if (a == "--flip" && i + 1 < argc) flip_at = atoll(argv[++i]);
        else if (a == "--flip-bit" && i + 1 < argc) {
            flip_bit = atoi(argv[++i]);
            if (flip_bit < 0 || flip_bit > 7) die("--flip-bit %d outside 0..7", flip_bit);
        } else if (a == "--drop" && i + 1 < argc) drop_at = atoll(argv[++i]);
        else if (a == "--vcd" && i + 1 < argc) vcd = argv[++i];
        else die("unknown option %s", a.c_str());
    }
    int master = open_pty();
    fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);

    if (vcd && !kCanTrace) die("built without tracing");
    SimTop sim(1);
    sim.open(vcd);
    Vtop& top = *sim.top;
    unsigned long long cycle = 0;
    top.rx = 1;
    sim.reset(8);
    cycle = 8;

#ifdef LELA_SDRAM
    BoardSdram sdram;
#endif
    UartLineIn<DIVISOR_NUM, DIVISOR_DEN> to_device;
    UartLineOut<DIVISOR_NUM, DIVISOR_DEN> from_device;
    long long host_bytes = 0;
    unsigned char buf[4096];
    for (;;) {
        if ((cycle & 255) == 0) {
            ssize_t n = read(master, buf, sizeof buf);
            for (ssize_t i = 0; i < n; i++) {
                unsigned char b = buf[i];
                long long k = host_bytes++;
                if (k == drop_at) continue;
                if (k == flip_at) b ^= (unsigned char)(1u << flip_bit);
                to_device.queue.push_back(b);
            }
            std::vector<unsigned char>& out = from_device.out;
            if (!out.empty()) {
                ssize_t w = write(master, out.data(), out.size());
                if (w > 0) out.erase(out.begin(), out.begin() + w);
            }
            if ((cycle & 0xFFFF) == 0) {
                ssize_t r = read(0, buf, sizeof buf);
                if (r == 0) break;  // stdin closed: the host is done
            }
            if (to_device.queue.empty() && !to_device.busy() && !from_device.busy() &&
                out.empty() && (cycle & 0x3FFFF) == 0) {
                struct pollfd p = {master, POLLIN, 0};
                poll(&p, 1, 0);
            }
        }
        top.rx = to_device.level();
        sim.tick();
        cycle++;
#ifdef LELA_SDRAM
        sdram.after_edge(top);
#endif
        from_device.sample(top.tx);
    }
#ifdef LELA_SDRAM
    sdram.report();
#endif
    sim.finish();
    return 0;
}
