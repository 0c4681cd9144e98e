"""Polynomial arithmetic over GF(2) and integer factoring: an independent primitivity check."""

import math
import random


def is_prime(n):
    if n < 2:
        return False
    small = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37)
    for p in small:
        if n % p == 0:
            return n == p
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for a in small:
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


def _rho(n, rng):
    if n % 2 == 0:
        return 2
    while True:
        c = rng.randrange(1, n)
        x = y = 2
        d = 1
        while d == 1:
            x = (x * x + c) % n
            y = (y * y + c) % n
            y = (y * y + c) % n
            d = math.gcd(abs(x - y), n)
        if d != n:
            return d


def prime_factors(n, rng=None):
    rng = rng or random.Random(0)
    if n == 1:
        return set()
    if is_prime(n):
        return {n}
    d = _rho(n, rng)
    return prime_factors(d, rng) | prime_factors(n // d, rng)


def _mulmod(a, b, poly, deg):
    r = 0
    while b:
        if b & 1:
            r ^= a
        b >>= 1
        a <<= 1
        if (a >> deg) & 1:
            a ^= poly
    return r


def _x_pow(e, poly, deg):
    result, base = 1, 2
    while e:
        if e & 1:
            result = _mulmod(result, base, poly, deg)
        base = _mulmod(base, base, poly, deg)
        e >>= 1
    return result


def is_primitive(poly, deg):
    """True if the GF(2) polynomial (bit k = coefficient of x**k) of degree ``deg`` is
    primitive: x has multiplicative order exactly 2**deg - 1 modulo it."""
    order = (1 << deg) - 1
    if _x_pow(order, poly, deg) != 1:
        return False
    return all(_x_pow(order // q, poly, deg) != 1 for q in prime_factors(order))
