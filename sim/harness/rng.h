// The harnesses' random choices (stalls, latencies): xorshift64*, seeded through splitmix64, so
// that one seed gives one run, cycle for cycle.
#pragma once

#include <cstdint>

namespace harness {

struct Rng {
    uint64_t state = 1;

    void seed(uint64_t seed) {
        // splitmix64 of the seed: a nonzero xorshift state
        uint64_t z = seed + 0x9E3779B97F4A7C15ull;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        state = (z ^ (z >> 31)) | 1;
    }
    inline uint64_t next() {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        return state * 0x2545F4914F6CDD1Dull;
    }
    // threshold in units of 2^-32: true with probability thr / 2^32 (thr == 2^32: always).
    inline bool chance(uint64_t thr) { return thr && (next() >> 32) < thr; }
};

inline uint64_t prob_threshold(double p) { return (uint64_t)(p * 4294967296.0 + 0.5); }

}  // namespace harness
