// The board's SDRAM as a cycle-accurate device on a controller's pins (docs/SDRAM.md): it
// stores data and checks every timing rule of the part. sim/sdram_model.py is its Python twin;
// tests/test_sdram_cpp.py runs both on the same pin traces and compares every DQ value and
// every verdict.
//
// The part's numbers come from contract/sdram.py through a generated header (gen/sdram_part.py
// writes `struct SdramPart` constants: sdram_part_header()). Rules are checked in nanoseconds:
// clocks between two commands x tCK against the data sheet's minimum.
//
// Per clock: step(pins) with the pins the controller drives this clock; it returns the word
// the device drives on DQ this clock, or -1 when it drives nothing. A READ in clock c drives
// its word in clock c + CL; the device holds DQ through clock c + CL + 1 (tOH, tHZ), so the
// controller driving DQ in either clock is a bus conflict. The first broken rule is kept in
// error() ("tRCD violated: READ at cycle 1234 to bank 2, ...") and the model stops checking;
// ok() is false from then on. Burst length 1 only; no BURST TERMINATE, auto precharge, CKE low.
#pragma once

#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <unordered_map>

namespace harness {

struct SdramPart {
    const char* name;
    int bank_bits, row_bits, col_bits;
    double tck_min_cl2, tck_min_cl3;
    double tRCD, tRP, tRAS, tRAS_max, tRC, tRFC, tRRD, tWR;
    int tWR_clk, tMRD_clk;
    double tOH, tHZ, tREF;
    int refresh_rows;
    double powerup;
    int init_refreshes, max_postponed;
};

struct SdramPins {
    int cke = 1, cs_n = 1, ras_n = 1, cas_n = 1, we_n = 1, ba = 0, a = 0, dqm = 0, dq_o = 0,
        dq_oe = 0;
};

class SdramModel {
  public:
    SdramModel(const SdramPart& part, double clock_hz, double powerup_ns, int max_postponed)
        : p_(part), tck_(1e9 / clock_hz), mhz_(clock_hz / 1e6), powerup_ns_(powerup_ns),
          max_postponed_(max_postponed), banks_(1 << part.bank_bits) {
        if (banks_ > 4) banks_ = 4;  // the arrays below hold 4 banks (every part here has 4)
        for (int b = 0; b < 4; b++) {
            row_[b] = UNKNOWN;
            last_act_[b] = last_pre_[b] = last_write_[b] = NEVER;
        }
    }

    bool ok() const { return error_.empty(); }
    const std::string& error() const { return error_; }
    int64_t cycle() const { return cycle_; }
    uint64_t commands(const char* name) const {
        auto it = counts_.find(name);
        return it == counts_.end() ? 0 : it->second;
    }
    int peek(int bank, int row, int col) const {
        auto it = mem_.find(key(bank, row, col));
        return it == mem_.end() ? 0 : it->second;
    }

    int step(const SdramPins& pin) {
        int64_t c = cycle_;
        int drive = -1;
        if (ok()) {
            if (!pin.cke) unsupported("CKE low: power-down and self refresh are not modelled");
            dqm_at_[c & 7] = pin.dqm;
            if (pin.dq_oe && busy_.count(c))
                fail("tHZ (bus turnaround)",
                     fmt("the controller drives DQ while the device still outputs the READ of "
                         "cycle %lld (its data holds tOH = %g ns past the sampling edge and "
                         "goes High-Z only tHZ = %g ns after it)",
                         (long long)busy_[c], p_.tOH, p_.tHZ));
            busy_.erase(c);
            auto o = out_.find(c);
            if (o != out_.end()) {
                if (!(dqm_at_[(c - 2) & 7] && c - 2 >= 0)) drive = o->second;
                out_.erase(o);
            }
            const char* command = "INHIBIT";
            if (!pin.cs_n) command = decode(pin.ras_n, pin.cas_n, pin.we_n);
            if (std::string(command) != "INHIBIT" && std::string(command) != "NOP") {
                counts_[command]++;
                if (ok()) issue(command, pin);
            } else {
                counts_["NOP"]++;
            }
            if (ok()) check_open_rows();
            if (ok()) check_refresh();
        }
        cycle_++;
        return ok() ? drive : -1;
    }

  private:
    static constexpr int UNKNOWN = -2, IDLE = -1;
    static constexpr int64_t NEVER = INT64_MIN;

    static const char* decode(int ras_n, int cas_n, int we_n) {
        static const char* table[8] = {"LOAD MODE REGISTER", "AUTO REFRESH", "PRECHARGE",
                                       "ACTIVE", "WRITE", "READ", "BURST TERMINATE", "NOP"};
        return table[(ras_n << 2) | (cas_n << 1) | we_n];
    }
    static uint64_t key(int bank, int row, int col) {
        return ((uint64_t)bank << 32) | ((uint64_t)row << 16) | (uint64_t)col;
    }
    static std::string fmt(const char* f, ...) {
        char buf[512];
        va_list ap;
        va_start(ap, f);
        std::vsnprintf(buf, sizeof buf, f, ap);
        va_end(ap);
        return buf;
    }
    static std::string g(double v) { return fmt("%g", v); }

    void fail(const char* rule, const std::string& message) {
        if (!ok()) return;
        error_ = std::string(rule) + " violated: " + message + " at cycle " +
                 std::to_string(cycle_);
    }
    void unsupported(const std::string& message) {
        if (ok()) error_ = "unsupported: " + message + " at cycle " + std::to_string(cycle_);
    }
    int cycles(double ns) const {
        int n = (int)std::ceil(ns / tck_ - 1e-9);
        return n < 1 ? 1 : n;
    }
    // `command` (this clock, to `bank`, or -1) must come `ns` and `clocks` after `what`.
    void need(const char* rule, const char* command, int bank, int64_t since,
              const std::string& what, double ns, int clocks = 0) {
        if (!ok() || since == NEVER) return;
        int64_t gap = cycle_ - since;
        if (gap * tck_ >= ns - 1e-9 && gap >= clocks) return;
        int want = ns > 0 ? cycles(ns) : 0;
        if (clocks > want) want = clocks;
        std::string wants = ns > 0 ? g(ns) + " ns" + (clocks ? " and " + std::to_string(clocks) +
                                                                   " clocks"
                                                             : "")
                                   : std::to_string(clocks) + " clocks";
        std::string to = bank >= 0 ? " to bank " + std::to_string(bank) : "";
        error_ = fmt("%s violated: %s at cycle %lld%s, %lld cycle%s (%.1f ns) after %s at cycle "
                     "%lld; needs %s (%d cycles at %g MHz)",
                     rule, command, (long long)cycle_, to.c_str(), (long long)gap,
                     gap == 1 ? "" : "s", gap * tck_, what.c_str(), (long long)since,
                     wants.c_str(), want, mhz_);
    }

    void issue(const char* command, const SdramPins& pin) {
        std::string cmd = command;
        int64_t c = cycle_;
        int ba = pin.ba, a = pin.a;
        if (c * tck_ < powerup_ns_ - 1e-9)
            return fail("power-up", fmt("%s after %.0f ns; the part needs %g ns of NOP or "
                                        "COMMAND INHIBIT first",
                                        command, c * tck_, powerup_ns_));
        need("tMRD", command, -1, last_mrs_, "LOAD MODE REGISTER", 0, p_.tMRD_clk);
        need("tRFC", command, -1, last_ref_, "AUTO REFRESH", p_.tRFC);
        if (!ok()) return;
        if (cmd == "BURST TERMINATE") return unsupported("BURST TERMINATE: burst length 1 only");
        bool col_cmd = cmd == "READ" || cmd == "WRITE";
        if ((cmd == "ACTIVE" || col_cmd) && ready_at_ == NEVER)
            return fail("initialisation",
                        fmt("%s before the initialisation completed (PRECHARGE ALL, %d AUTO "
                            "REFRESH, LOAD MODE REGISTER; so far: precharged=%s, %d refreshes, "
                            "mode set=%s)",
                            command, p_.init_refreshes, precharged_all_ ? "True" : "False",
                            init_refreshes_, cl_ ? "True" : "False"));
        if (cmd == "ACTIVE") {
            int row = a & ((1 << p_.row_bits) - 1);
            if (row_[ba] != IDLE)
                return fail("bank state", fmt("ACTIVE to bank %d (row %d) while row %s is open; "
                                              "PRECHARGE it first",
                                              ba, row, row_name(ba).c_str()));
            need("tRP", command, ba, last_pre_[ba], "PRECHARGE", p_.tRP);
            need("tRC", command, ba, last_act_[ba], "ACTIVE", p_.tRC);
            if (last_act_any_ != NEVER && last_act_bank_ != ba)
                need("tRRD", command, ba, last_act_any_,
                     "ACTIVE to bank " + std::to_string(last_act_bank_), p_.tRRD);
            row_[ba] = row;
            last_act_[ba] = c;
            last_act_any_ = c;
            last_act_bank_ = ba;
        } else if (col_cmd) {
            int col = a & ((1 << p_.col_bits) - 1);
            if (a & (1 << 10)) return unsupported(cmd + " with auto precharge (A10)");
            if (row_[ba] == IDLE)
                return fail("bank state", fmt("%s to bank %d with no row open", command, ba));
            need("tRCD", command, ba, last_act_[ba], "ACTIVE", p_.tRCD);
            if (!ok()) return;
            uint64_t k = key(ba, row_[ba], col);
            if (cmd == "WRITE") {
                if (!pin.dq_oe)
                    return fail("write data", fmt("WRITE to bank %d with DQ not driven", ba));
                int mask = ((pin.dqm & 1) ? 0 : 0x00ff) | ((pin.dqm & 2) ? 0 : 0xff00);
                int old = mem_.count(k) ? mem_[k] : 0;
                mem_[k] = (old & ~mask & 0xffff) | (pin.dq_o & mask);
                last_write_[ba] = c;
            } else {
                int64_t at = c + cl_;
                out_[at] = mem_.count(k) ? mem_[k] : 0;
                busy_[at] = c;
                busy_[at + 1] = c;
            }
        } else if (cmd == "PRECHARGE") {
            bool all = a & (1 << 10);
            for (int b = 0; b < banks_ && ok(); b++) {
                if (!all && b != ba) continue;
                if (row_[b] == IDLE) continue;
                if (row_[b] != UNKNOWN) {
                    need("tRAS", command, b, last_act_[b], "ACTIVE", p_.tRAS);
                    need("tWR", command, b, last_write_[b], "WRITE", p_.tWR, p_.tWR_clk);
                }
                row_[b] = IDLE;
                last_pre_[b] = c;
            }
            if (all) precharged_all_ = true;
        } else {  // AUTO REFRESH, LOAD MODE REGISTER
            if (!precharged_all_)
                return fail("initialisation", cmd + " before the first PRECHARGE ALL");
            for (int b = 0; b < banks_; b++) {
                if (row_[b] != IDLE)
                    return fail("bank state", fmt("%s with row %s of bank %d open; all banks "
                                                  "must be idle",
                                                  command, row_name(b).c_str(), b));
                need("tRP", command, b, last_pre_[b], "PRECHARGE of bank " + std::to_string(b),
                     p_.tRP);
            }
            if (!ok()) return;
            if (cmd == "AUTO REFRESH") {
                last_ref_ = c;
                if (ready_at_ == NEVER) {
                    init_refreshes_++;
                } else {
                    balance_ = balance_ + 1 < p_.max_postponed ? balance_ + 1 : p_.max_postponed;
                    last_ref_cycle_ = c;
                }
            } else {
                mode(a);
                last_mrs_ = c;
            }
            if (ok() && ready_at_ == NEVER && cl_ && init_refreshes_ >= p_.init_refreshes) {
                ready_at_ = c;
                last_ref_cycle_ = c;
                next_due_ns_ = c * tck_ + p_.tREF / p_.refresh_rows;
            }
        }
    }

    void mode(int a) {
        int bl = a & 7, cl = (a >> 4) & 7, op = (a >> 7) & 3;
        if (bl != 0 || op != 0)
            return unsupported(fmt("mode register %#06x: burst length 1 and standard operation "
                                   "only",
                                   a));
        if (cl != 2 && cl != 3)
            return fail("CAS latency", fmt("mode register %#06x selects CAS latency %d; the part "
                                           "has [2, 3]",
                                           a, cl));
        double tmin = cl == 2 ? p_.tck_min_cl2 : p_.tck_min_cl3;
        if (tck_ < tmin - 1e-9)
            return fail("tCK", fmt("CAS latency %d needs tCK >= %g ns; the clock is %.2f ns", cl,
                                   tmin, tck_));
        cl_ = cl;
    }

    std::string row_name(int b) const {
        return row_[b] == UNKNOWN ? "?" : std::to_string(row_[b]);
    }

    void check_open_rows() {
        for (int b = 0; b < banks_; b++)
            if (row_[b] >= 0 && last_act_[b] != NEVER &&
                (cycle_ - last_act_[b]) * tck_ > p_.tRAS_max)
                return fail("tRAS(max)",
                            fmt("row %d of bank %d open since ACTIVE at cycle %lld, over %g ns",
                                row_[b], b, (long long)last_act_[b], p_.tRAS_max));
    }

    void check_refresh() {
        if (ready_at_ == NEVER) return;
        double trefi = p_.tREF / p_.refresh_rows;
        while (cycle_ * tck_ >= next_due_ns_ - 1e-9) {
            balance_--;
            next_due_ns_ += trefi;
            if (balance_ < -max_postponed_)
                return fail("refresh interval (tREFI)",
                            fmt("%d AUTO REFRESH overdue (last REF at cycle %lld); the part "
                                "needs %d every %g ms, one per %g ns on average, at most %d "
                                "postponed",
                                -balance_, (long long)last_ref_cycle_, p_.refresh_rows,
                                p_.tREF / 1e6, trefi, max_postponed_));
        }
    }

    SdramPart p_;
    double tck_, mhz_, powerup_ns_;
    int max_postponed_, banks_;
    int64_t cycle_ = 0;
    int row_[4];
    int64_t last_act_[4], last_pre_[4], last_write_[4];
    int64_t last_act_any_ = NEVER, last_ref_ = NEVER, last_mrs_ = NEVER;
    int last_act_bank_ = -1;
    int cl_ = 0;
    bool precharged_all_ = false;
    int init_refreshes_ = 0;
    int64_t ready_at_ = NEVER, last_ref_cycle_ = NEVER;
    int balance_ = 0;
    double next_due_ns_ = 0;
    int dqm_at_[8] = {0};
    std::unordered_map<uint64_t, int> mem_;
    std::map<int64_t, int> out_;
    std::map<int64_t, int64_t> busy_;
    std::map<std::string, uint64_t> counts_;
    std::string error_;
};

}  // namespace harness
