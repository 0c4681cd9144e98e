// The board's SDRAM in the board harness (board_harness.cpp, built with LELA_SDRAM): the device
// model (sdram_model.h) on `lela_board`'s sdram__* ports, which carry what the device's pins see
// (hw/boards/sdram.py: the I/O registers are in the simulated design). Verilator escapes the
// ports' "__" as "___05F". Each clock, after the
// rising edge, the model takes the pins of the clock that edge began and returns what the
// device drives on DQ in it; dq_i gets that word, or a random one when the device drives
// nothing (data taken in the wrong clock is then wrong). A broken timing rule ends the run
// with the rule named (die: "lela_board_harness: SDRAM: tRCD violated: ...").
//
// The build's board_config.h defines SDRAM_CLOCK_HZ and the part table PART (gen/sdram_part.py).
#pragma once

#include <cstdio>

#include "common.h"
#include "rng.h"
#include "sdram_model.h"

namespace harness {

class BoardSdram {
  public:
    BoardSdram() : model_(PART, SDRAM_CLOCK_HZ, PART.powerup, 0) { rng_.seed(0x5d7a); }

    template <class Top>
    void after_edge(Top& top) {
        SdramPins p;
        p.cke = top.sdram___05Fcke;
        p.cs_n = top.sdram___05Fcs_n;
        p.ras_n = top.sdram___05Fras_n;
        p.cas_n = top.sdram___05Fcas_n;
        p.we_n = top.sdram___05Fwe_n;
        p.ba = top.sdram___05Fba;
        p.a = top.sdram___05Fa;
        p.dqm = top.sdram___05Fdqm;
        p.dq_o = top.sdram___05Fdq_o;
        p.dq_oe = top.sdram___05Fdq_oe;
        int out = model_.step(p);
        if (!model_.ok()) die("SDRAM: %s", model_.error().c_str());
        top.sdram___05Fdq_i = out >= 0 ? out : (int)(rng_.next() & 0xffff);
    }

    // One line on stderr: the commands the device took (tests compare the READ and WRITE
    // counts with the accelerator's traffic counters).
    void report() const {
        std::fprintf(stderr, "sdram: cycles %lld READ %llu WRITE %llu ACTIVE %llu PRECHARGE %llu "
                     "AUTO_REFRESH %llu\n", (long long)model_.cycle(),
                     (unsigned long long)model_.commands("READ"),
                     (unsigned long long)model_.commands("WRITE"),
                     (unsigned long long)model_.commands("ACTIVE"),
                     (unsigned long long)model_.commands("PRECHARGE"),
                     (unsigned long long)model_.commands("AUTO REFRESH"));
        std::fflush(stderr);
    }

  private:
    SdramModel model_;
    Rng rng_;
};

}  // namespace harness
