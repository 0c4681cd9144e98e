// The board's UART pins, 8N1 at Num / Den cycles per bit (hw/uart.py's divisor, a whole number
// when Den is 1): bytes for the device become levels on its rx pin (UartLineIn); levels on its
// tx pin become bytes (UartLineOut). A fractional period follows hw/uart.py's rules, so the line
// runs at the board's exact average rate.
#pragma once

#include <deque>
#include <vector>

namespace harness {

// Host -> device: 10 bits (start, 8 data LSB first, stop), idle high; bit k of a character ends
// round((k + 1) * Num / Den) cycles (halves up) after the character starts, as hw/uart.py's
// transmitter puts them (every bit Num cycles when Den is 1).
template <long Num, long Den = 1>
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
        if (++count_ == boundary(bit_ + 1)) {
            if (++bit_ == 10) bit_ = -1;
        }
        return level;
    }

  private:
    static constexpr long boundary(int k) { return (2L * k * Num + Den) / (2L * Den); }
    int bit_ = -1;
    long count_ = 0;  // cycles since the character started
    unsigned char byte_ = 0;
};

// Device -> host: samples bit j of a character (0 the start bit, 9 the stop bit)
// floor((j + 1/2) * Num / Den) cycles after it saw the start bit low, as hw/uart.py's receiver
// (Num / 2 + j * Num when Den is 1); a start bit that is high again at its middle is a glitch;
// a byte whose stop bit is low is dropped.
template <long Num, long Den = 1>
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
        } else if (++count_ == sample_point(bit_)) {
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
    static constexpr long sample_point(int j) { return (2L * j + 1) * Num / (2L * Den); }
    int bit_ = -1;
    long count_ = 0;  // cycles since the start bit was seen
    unsigned shift_ = 0;
};

}  // namespace harness
