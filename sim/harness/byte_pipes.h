// Host bytes in and out of `lela_accelerator` (uart_pins.h does it for the board's pins).
//
// StreamPipes: the rx/tx byte streams of `lela_accelerator`. rx offers the queued bytes in
// order, raising valid at random (probability of holding back: rx_stall) and keeping it, with
// its payload, until taken, as a stream source must; tx.ready is low in a cycle with
// probability tx_stall. Bytes that leave tx are collected and counted into frames (SYNC 0xA5,
// cmd, tag, u16 len, payload, crc: 6+len bytes from the SYNC; bytes before a SYNC skipped).
// Per cycle: drive() before the design settles, sample() after, update() after the edge.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <vector>

#include "ports.h"
#include "rng.h"

namespace harness {

static constexpr uint8_t FRAME_SYNC = 0xA5;

// Counts complete frames in a byte stream.
class FrameCounter {
  public:
    uint64_t frames = 0;  // frames completed (total)

    inline void feed(uint8_t b) {
        uint32_t i = pos_;
        if (i == 0) {
            if (b == FRAME_SYNC) pos_ = 1;
            return;
        }
        if (i == 3) len_ = b;
        else if (i == 4) len_ |= (uint32_t)b << 8;
        pos_ = i + 1;
        if (pos_ >= 5 && pos_ == 6 + len_) {
            frames++;
            pos_ = 0;
        }
    }

  private:
    uint32_t pos_ = 0, len_ = 0;  // bytes of the current frame seen, its payload length
};

class StreamPipes {
  public:
    uint64_t rx_stall = 0, tx_stall = 0;  // probability thresholds (rng.h)
    uint64_t rx_bytes = 0, tx_bytes = 0;
    FrameCounter tx_frames;
    std::vector<uint8_t> out;  // tx bytes of the current request

    // Keeps the bytes not yet taken and returns where to append `n` new ones.
    uint8_t* append(size_t n) {
        rx_.erase(rx_.begin(), rx_.begin() + (std::ptrdiff_t)rx_pos_);
        rx_pos_ = 0;
        size_t old = rx_.size();
        rx_.resize(old + n);
        return rx_.data() + old;
    }
    bool rx_drained() const { return rx_pos_ == rx_.size(); }

    inline void drive(Vtop* t, Rng& rng) {
        // rx: raise valid at random while bytes wait; keep it until taken
        if (!rx_valid_ && rx_pos_ < rx_.size() && !rng.chance(rx_stall)) {
            rx_valid_ = 1;
            t->P_RX_PAYLOAD = rx_[rx_pos_];
        }
        t->P_RX_VALID = rx_valid_;
        tx_ready_ = !rng.chance(tx_stall);
        t->P_TX_READY = tx_ready_;
    }

    inline void sample(Vtop* t) {
        rx_fire_ = rx_valid_ && t->P_RX_READY;
        tx_fire_ = tx_ready_ && t->P_TX_VALID;
        tx_byte_ = (uint8_t)t->P_TX_PAYLOAD;
    }

    inline void update() {
        if (rx_fire_) {
            rx_pos_++;
            rx_valid_ = 0;
            rx_bytes++;
        }
        if (tx_fire_) {
            out.push_back(tx_byte_);
            tx_bytes++;
            tx_frames.feed(tx_byte_);
        }
    }

  private:
    std::vector<uint8_t> rx_;
    size_t rx_pos_ = 0;
    uint8_t rx_valid_ = 0, tx_ready_ = 0, tx_byte_ = 0;
    bool rx_fire_ = false, tx_fire_ = false;
};

}  // namespace harness
