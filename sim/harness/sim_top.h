// Shared by both harnesses: the Verilated design (`Vtop`), its optional VCD trace and its clock.
//
// Each evaluation is dumped to the VCD (when tracing) at a time that advances by `half_period`
// per evaluation; a cycle is two evaluations, clk low then clk high. Tracing needs a build with
// `verilator --trace` and -DLELA_TRACE (sim/harness.py: trace=True).
#pragma once

#include "Vtop.h"
#include "verilated.h"
#ifdef LELA_TRACE
#include "verilated_vcd_c.h"
#endif

#include <cstdint>

#include "common.h"

namespace harness {

class SimTop {
  public:
    VerilatedContext* ctx;
    Vtop* top;

    explicit SimTop(uint64_t half_period) : half_period_(half_period) {
        ctx = new VerilatedContext;
        ctx->debug(0);
        ctx->randReset(0);
        top = nullptr;
    }

    // Builds the model, tracing into `vcd_path` if given; dies if tracing was not built in.
    void open(const char* vcd_path) {
#ifdef LELA_TRACE
        if (vcd_path) ctx->traceEverOn(true);
#endif
        top = new Vtop{ctx};
#ifdef LELA_TRACE
        if (vcd_path) {
            vcd_ = new VerilatedVcdC;
            top->trace(vcd_, 99);
            vcd_->open(vcd_path);
            if (!vcd_->isOpen()) die("cannot open VCD file %s", vcd_path);
        }
#else
        (void)vcd_path;
#endif
    }

    inline void eval_dump() {
        top->eval();
#ifdef LELA_TRACE
        if (vcd_) vcd_->dump(time_);
#endif
        time_ += half_period_;
    }

    // One clock cycle with the inputs as they are.
    inline void tick() {
        top->clk = 0;
        eval_dump();
        top->clk = 1;
        eval_dump();
    }

    // rst high for `cycles` cycles, then low.
    void reset(int cycles) {
        top->rst = 1;
        for (int i = 0; i < cycles; i++) tick();
        top->rst = 0;
    }

    void flush_trace() {
#ifdef LELA_TRACE
        if (vcd_) vcd_->flush();
#endif
    }

    void close_trace() {
#ifdef LELA_TRACE
        if (vcd_) {
            vcd_->close();
            vcd_ = nullptr;
        }
#endif
    }

    void finish() {
        top->final();
        close_trace();
        delete top;
        top = nullptr;
        delete ctx;
        ctx = nullptr;
    }

  private:
    uint64_t half_period_;
    uint64_t time_ = 0;
#ifdef LELA_TRACE
    VerilatedVcdC* vcd_ = nullptr;
#endif
};

// Whether this build can trace (a harness refuses --vcd otherwise).
constexpr bool kCanTrace =
#ifdef LELA_TRACE
    true;
#else
    false;
#endif

}  // namespace harness
