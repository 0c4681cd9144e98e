// Shared by both harnesses: fatal errors and option parsing.
//
// A harness reports a fatal error as one line on stderr, "<harness name>: <message>", and exits
// with code 2. Before it exits, the hook set with set_die_hook flushes what the harness writes
// (the write log, the VCD), so a failed run leaves complete records behind.
#pragma once

#include <cerrno>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace harness {

inline const char*& name() {
    static const char* n = "lela harness";
    return n;
}
inline void (*&die_hook())() {
    static void (*hook)() = nullptr;
    return hook;
}
inline void set_die_hook(void (*hook)()) { die_hook() = hook; }

[[noreturn]] inline void die(const char* fmt, ...) {
    if (die_hook()) die_hook()();
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    std::fprintf(stderr, "%s: %s\n", name(), msg);
    std::fflush(stderr);
    std::_Exit(2);
}

inline double parse_prob(const char* opt, const char* s) {
    char* end;
    double p = std::strtod(s, &end);
    if (*s == 0 || *end || !(p >= 0.0 && p <= 1.0))
        die("%s wants a probability 0..1, got '%s'", opt, s);
    return p;
}

inline uint64_t parse_uint(const char* opt, const char* s) {
    char* end;
    errno = 0;
    unsigned long long v = std::strtoull(s, &end, 0);
    if (*s == 0 || *end || *s == '-' || errno)
        die("%s wants a non-negative integer, got '%s'", opt, s);
    return v;
}

}  // namespace harness
