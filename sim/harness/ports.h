// The ports of `lela_accelerator` as Verilator names them, and reading and writing words of any
// width through them. Needs harness_config.h (WORD_BITS).
#pragma once

#include "Vtop.h"
#include "verilated.h"

#include <cstddef>
#include <cstdint>
#include <cstring>

// Verilator escapes "__" in identifiers as "___05F": port `rx__valid` is `rx___05Fvalid`.
#define P_RX_VALID rx___05Fvalid
#define P_RX_READY rx___05Fready
#define P_RX_PAYLOAD rx___05Fpayload
#define P_TX_VALID tx___05Fvalid
#define P_TX_READY tx___05Fready
#define P_TX_PAYLOAD tx___05Fpayload
#define P_AR_VALID mem___05Far___05Fvalid
#define P_AR_READY mem___05Far___05Fready
#define P_AR_PAYLOAD mem___05Far___05Fpayload
#define P_R_VALID mem___05Fr___05Fvalid
#define P_R_READY mem___05Fr___05Fready
#define P_R_PAYLOAD mem___05Fr___05Fpayload
#define P_AW_VALID mem___05Faw___05Fvalid
#define P_AW_READY mem___05Faw___05Fready
#define P_AW_PAYLOAD mem___05Faw___05Fpayload
#define P_W_VALID mem___05Fw___05Fvalid
#define P_W_READY mem___05Fw___05Fready
#define P_W_PAYLOAD mem___05Fw___05Fpayload

static constexpr int WORD_BYTES = (WORD_BITS + 7) / 8;

// ---- port access for any Verilator width (CData/SData/IData/QData or VlWide<N>) ----------

template <typename T>
static inline void put_word(T& port, const uint8_t* src) {
    static_assert(sizeof(T) * 8 >= WORD_BITS, "port narrower than WORD_BITS");
    uint64_t v = 0;
    std::memcpy(&v, src, WORD_BYTES);  // little-endian host
    port = (T)v;
}
template <std::size_t N>
static inline void put_word(VlWide<N>& port, const uint8_t* src) {
    std::memset(port.data(), 0, N * sizeof(EData));
    std::memcpy(port.data(), src, WORD_BYTES);
}
template <typename T>
static inline void get_word(const T& port, uint8_t* dst) {
    uint64_t v = (uint64_t)port;
    std::memcpy(dst, &v, WORD_BYTES);
}
template <std::size_t N>
static inline void get_word(const VlWide<N>& port, uint8_t* dst) {
    std::memcpy(dst, port.data(), WORD_BYTES);
}
// `n` (<= 32) bits from bit `lo`.
template <typename T>
static inline uint32_t get_bits(const T& port, int lo, int n) {
    return (uint32_t)(((uint64_t)port >> lo) & ((1ull << n) - 1));
}
template <std::size_t N>
static inline uint32_t get_bits(const VlWide<N>& port, int lo, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++) {
        int b = lo + i;
        v |= (uint64_t)((port.data()[b / 32] >> (b % 32)) & 1u) << i;
    }
    return (uint32_t)v;
}
