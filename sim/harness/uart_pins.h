// The board's UART pins, 8N1 at Divisor cycles per bit: bytes for the device become levels on
// its rx pin (UartLineIn); levels on its tx pin become bytes (UartLineOut).
#pragma once

#include <deque>
#include <vector>

namespace harness {

// Host -> device: 10 bits (start, 8 data LSB first, stop) of Divisor cycles each; idle high.
template <int Divisor>
class UartLineIn {
  public:
    std::deque<unsigned char> queue;

    bool busy() const { return bit_ >= 0; }

    // The level of the device's rx pin for this cycle.
    inline int level() {
        if (bit_ < 0 && !queue.empty()) {
            byte_ = queue.front();
            queue.pop_front();
            bit_ = 0;
            count_ = 0;
        }
        if (bit_ < 0) return 1;
        int level = bit_ == 0 ? 0 : bit_ <= 8 ? (byte_ >> (bit_ - 1)) & 1 : 1;
        if (++count_ == Divisor) {
            count_ = 0;
            if (++bit_ == 10) bit_ = -1;
        }
        return level;
    }

  private:
    int bit_ = -1, count_ = 0;
    unsigned char byte_ = 0;
};

// Device -> host: samples the device's tx pin mid-bit; a start bit that is high again at its
// middle is a glitch; a byte whose stop bit is low is dropped.
template <int Divisor>
class UartLineOut {
  public:
    std::vector<unsigned char> out;

    bool busy() const { return bit_ >= 0; }

    inline void sample(int tx) {
        if (bit_ < 0) {
            if (!tx) {
                bit_ = 0;
                count_ = 0;
                shift_ = 0;
            }
        } else if (++count_ == (bit_ == 0 ? Divisor / 2 : Divisor)) {
            count_ = 0;
            if (bit_ == 0) {
                if (tx) bit_ = -1;  // a glitch, not a start bit
                else bit_ = 1;
            } else if (bit_ <= 8) {
                shift_ |= (unsigned)tx << (bit_ - 1);
                bit_++;
            } else {
                if (tx) out.push_back((unsigned char)shift_);
                bit_ = -1;
            }
        }
    }

  private:
    int bit_ = -1, count_ = 0;
    unsigned shift_ = 0;
};

}  // namespace harness
