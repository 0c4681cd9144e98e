// The weight memory on `lela_accelerator`'s mem__* ports (docs/HOST_INTERFACE.md, "The weight
// bus"); sim/memory_model.py is its cocotb twin.
//
// MEM_WORDS words, zero at start. Read and write sides are independent. Read commands are
// served in order; each burst waits a random 0..read_latency cycles before its first beat. A
// channel stalls (r.valid, ar.ready, aw.ready, w.ready low) in a cycle with probability
// `stall`. w.ready is high only while an accepted write command has beats left. r.valid, once
// raised, stays high with a stable payload until taken. Every write beat is appended to the
// write log (u32 address, then the word's bytes, little endian) when one is open. An
// out-of-range access or a zero-length burst is fatal (exit 2).
//
// Per cycle: drive() sets the memory's inputs to the design, sample() reads the handshakes
// after the design settled (clk low), update() acts on them after the clock edge.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <vector>

#include "common.h"
#include "ports.h"
#include "rng.h"

static_assert(ADDR_BITS >= 1 && ADDR_BITS <= 32, "ADDR_BITS must be 1..32 (u32 word addresses)");
static_assert(LEN_BITS == 16, "the bus length field is 16 bits");
static_assert((uint64_t)MEM_WORDS <= (1ull << ADDR_BITS), "MEM_WORDS exceeds the address space");

namespace harness {

class MemoryModel {
  public:
    uint32_t read_latency = 0;
    uint64_t stall = 0;  // probability threshold (rng.h)
    FILE* write_log = nullptr;
    uint64_t words_read = 0, words_written = 0;

    MemoryModel() : mem_((size_t)MEM_WORDS * WORD_BYTES, 0) {}

    inline void drive(Vtop* t, Rng& rng) {
        // read side
        ar_ready_ = !rng.chance(stall);
        t->P_AR_READY = ar_ready_;
        if (!r_valid_) {
            if (!r_active_ && !ar_q_.empty()) {
                r_cur_ = ar_q_.front();
                ar_q_.pop_front();
                r_active_ = true;
                r_wait_ = read_latency ? (uint32_t)(rng.next() % ((uint64_t)read_latency + 1)) : 0;
            }
            if (r_active_) {
                if (r_wait_) {
                    r_wait_--;
                } else if (!rng.chance(stall)) {
                    r_valid_ = 1;
                    put_word(t->P_R_PAYLOAD, &mem_[(size_t)r_cur_.addr * WORD_BYTES]);
                }
            }
        }
        t->P_R_VALID = r_valid_;
        // write side
        aw_ready_ = !rng.chance(stall);
        t->P_AW_READY = aw_ready_;
        w_ready_ = !aw_q_.empty() && !rng.chance(stall);
        t->P_W_READY = w_ready_;
    }

    inline void sample(Vtop* t) {
        ar_fire_ = ar_ready_ && t->P_AR_VALID;
        if (ar_fire_) {
            ar_addr_ = get_bits(t->P_AR_PAYLOAD, 0, ADDR_BITS);
            ar_len_ = get_bits(t->P_AR_PAYLOAD, ADDR_BITS, LEN_BITS);
        }
        r_fire_ = r_valid_ && t->P_R_READY;
        aw_fire_ = aw_ready_ && t->P_AW_VALID;
        if (aw_fire_) {
            aw_addr_ = get_bits(t->P_AW_PAYLOAD, 0, ADDR_BITS);
            aw_len_ = get_bits(t->P_AW_PAYLOAD, ADDR_BITS, LEN_BITS);
        }
        w_fire_ = w_ready_ && t->P_W_VALID;
        if (w_fire_) get_word(t->P_W_PAYLOAD, w_data_);
    }

    inline void update(uint64_t cycle) {
        if (ar_fire_) {
            check_burst("read", ar_addr_, ar_len_, cycle);
            ar_q_.push_back(Burst{ar_addr_, ar_len_});
        }
        if (r_fire_) {
            r_valid_ = 0;
            words_read++;
            r_cur_.addr++;
            if (--r_cur_.left == 0) r_active_ = false;
        }
        if (w_fire_) {
            Burst& b = aw_q_.front();
            std::memcpy(&mem_[(size_t)b.addr * WORD_BYTES], w_data_, WORD_BYTES);
            if (write_log) {
                uint8_t a[4] = {(uint8_t)b.addr, (uint8_t)(b.addr >> 8), (uint8_t)(b.addr >> 16),
                                (uint8_t)(b.addr >> 24)};
                std::fwrite(a, 1, 4, write_log);
                std::fwrite(w_data_, 1, WORD_BYTES, write_log);
            }
            words_written++;
            b.addr++;
            if (--b.left == 0) aw_q_.pop_front();
        }
        if (aw_fire_) {
            check_burst("write", aw_addr_, aw_len_, cycle);
            aw_q_.push_back(Burst{aw_addr_, aw_len_});
        }
    }

  private:
    struct Burst {
        uint32_t addr;
        uint32_t left;
    };

    static void check_burst(const char* what, uint32_t addr, uint32_t len, uint64_t cycle) {
        if (len == 0)
            die("%s command with len 0 at address %u (cycle %llu)", what, addr,
                (unsigned long long)cycle);
        if ((uint64_t)addr + len > (uint64_t)MEM_WORDS)
            die("%s command addr=%u len=%u outside the memory of %u words (cycle %llu)", what,
                addr, len, (unsigned)MEM_WORDS, (unsigned long long)cycle);
    }

    std::vector<uint8_t> mem_;
    std::deque<Burst> ar_q_, aw_q_;
    bool r_active_ = false;
    Burst r_cur_{0, 0};
    uint32_t r_wait_ = 0;
    uint8_t r_valid_ = 0;
    // this cycle's handshakes
    uint8_t ar_ready_ = 0, aw_ready_ = 0, w_ready_ = 0;
    bool ar_fire_ = false, r_fire_ = false, aw_fire_ = false, w_fire_ = false;
    uint32_t ar_addr_ = 0, ar_len_ = 0, aw_addr_ = 0, aw_len_ = 0;
    uint8_t w_data_[WORD_BYTES];
};

}  // namespace harness
