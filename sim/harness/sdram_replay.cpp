// Replays a pin trace through sim/harness/sdram_model.h (tests/test_sdram_cpp.py): the first
// line is "clock_hz powerup_ns max_postponed", then one line per clock with
// "cke cs_n ras_n cas_n we_n ba a dqm dq_o dq_oe". Prints the DQ value the device drives each
// clock (-1: none) up to the first violation, then "OK" or "ERROR <message>".
// Built with -include of the generated part header (gen/sdram_part.py), which defines PART.
#include <cstdio>

#include "sdram_model.h"

int main() {
    double clock_hz, powerup_ns;
    int max_postponed;
    if (std::scanf("%lf %lf %d", &clock_hz, &powerup_ns, &max_postponed) != 3) return 2;
    harness::SdramModel model(PART, clock_hz, powerup_ns, max_postponed);
    harness::SdramPins p;
    while (std::scanf("%d %d %d %d %d %d %d %d %d %d", &p.cke, &p.cs_n, &p.ras_n, &p.cas_n,
                      &p.we_n, &p.ba, &p.a, &p.dqm, &p.dq_o, &p.dq_oe) == 10) {
        int out = model.step(p);
        if (!model.ok()) break;
        std::printf("%d\n", out);
    }
    if (model.ok())
        std::printf("OK\n");
    else
        std::printf("ERROR %s\n", model.error().c_str());
    return 0;
}
