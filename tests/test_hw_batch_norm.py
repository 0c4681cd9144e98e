"""The batch-normalisation components together against the golden model's step 1b
(sw_model/golden_batch_norm.normalise), in Amaranth's simulator: BatchStatistics then
BatchNormalise, a neuron at a time, as the core drives them; every output (z, xhat, bn_active,
h and the moved running statistics) equal to the golden model's. The per-cycle benches
(tests/test_rtl_batch_*.py) check each component against its own model; this checks that the
two, wired as documented, are the golden model's rule."""

import numpy as np
import pytest
from amaranth.hdl import Module
from amaranth.sim import Simulator

from contract.batch_norm import batch_reciprocal
from contract.config import NetConfig
from hw.core.batch_normalise import BatchNormalise
from hw.core.batch_statistics import BatchStatistics
from sw_model.golden_batch_norm import BatchNormState, normalise


def run_layer(c, bn, y, training, lanes):
    """Drive the two components over ``y`` (batch x neurons) and return what they give, in the
    golden model's shapes."""
    batch, neurons = y.shape
    wb = c.weight_bits
    stats = BatchStatistics(lanes, c.act_bits, wb)
    norm = BatchNormalise(lanes, c.act_bits, wb, stats.o.s1.shape(), stats.o.r.shape(),
                          stats.o.j.shape(), 8)
    m = Module()
    m.submodules.stats, m.submodules.norm = stats, norm
    groups = -(-batch // lanes)
    z = np.zeros((batch, neurons), dtype=np.int64)
    xhat = np.zeros_like(z)
    active = np.zeros((batch, neurons), dtype=bool)
    h, mean, var = (np.zeros(neurons, dtype=np.int64) for _ in range(3))

    async def bench(ctx):
        af, wf, rf = c.act_frac, c.weight_frac, c.bn_stat_frac
        settings = [(stats.training, int(training)), (stats.batch, batch),
                    (stats.inv_b, batch_reciprocal(batch)),
                    (stats.eps_log2, 2 * af - c.bn_eps_shift), (stats.stat_frac, rf),
                    (stats.momentum, c.bn_momentum_shift), (stats.frac_diff, wf - af),
                    (norm.training, int(training)), (norm.batch, batch), (norm.act_frac, af),
                    (norm.weight_frac, wf), (norm.stat_frac, rf)]
        for sig, value in settings:
            ctx.set(sig, value)
        for n in range(neurons):
            column = [int(v) for v in y[:, n]] + [0] * (groups * lanes - batch)
            words = [column[g * lanes:(g + 1) * lanes] for g in range(groups)]
            for g, word in enumerate(words):
                ctx.set(stats.add, {"valid": 1, "clear": int(g == 0), "y": word,
                                    "mask": sum(1 << q for q in range(lanes)
                                                if g * lanes + q < batch)})
                await ctx.tick()
            ctx.set(stats.add.valid, 0)
            ctx.set(stats.finish, {"valid": 1, "gamma": int(bn.gamma[n]),
                                   "mean": int(bn.mean[n]), "var": int(bn.var[n])})
            await ctx.tick()
            ctx.set(stats.finish.valid, 0)
            while not ctx.get(stats.o.valid):
                await ctx.tick()
            out = ctx.get(stats.o)
            h[n], mean[n], var[n] = out.h, out.mean, out.var
            for name in ("s1", "r", "j"):
                ctx.set(getattr(norm, name), getattr(out, name))
            ctx.set(norm.mean, int(bn.mean[n]))           # the old mean centres in inference
            ctx.set(norm.gamma, int(bn.gamma[n]))
            pending = list(range(groups))
            for g, word in enumerate(words):
                ctx.set(norm.i, {"valid": 1, "tag": g, "y": word})
                await ctx.tick()
                if ctx.get(norm.o.valid):
                    collect(ctx.get(norm.o), n, pending)
            ctx.set(norm.i.valid, 0)
            while pending:
                await ctx.tick()
                if ctx.get(norm.o.valid):
                    collect(ctx.get(norm.o), n, pending)

    def collect(o, n, pending):
        g = o.tag
        pending.remove(g)
        for q in range(lanes):
            b = g * lanes + q
            if b < batch:
                z[b, n], xhat[b, n], active[b, n] = o.z[q], o.xhat[q], (o.active >> q) & 1

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return z, xhat, active, h, mean, var


def layer_outputs(c, rng, batch, neurons):
    top = (1 << c.act_bits) - 1
    y = rng.integers(0, top + 1, (batch, neurons))
    y[:, 0] = rng.integers(0, top + 1)                      # a neuron with zero variance
    y[:, 1] = rng.choice([0, top], batch)                   # the extremes
    if neurons > 2:                                         # a narrow one
        y[:, 2] = np.clip(rng.normal(top / 3, 2, batch).round(), 0, top)
    return y


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("kw, lanes, batch", [
    (dict(), 4, 10),
    (dict(act_bits=12, input_frac=8, act_frac=10, bn_eps_shift=3, bn_momentum_shift=0), 2, 7),
    (dict(weight_frac=14, bn_stat_frac=4, bn_eps_shift=14), 8, 17),
])
def test_statistics_and_normalise_are_the_golden_step(kw, lanes, batch, training):
    c = NetConfig.from_dict(dict(arch=(4, 6), classes=3, batch=batch, batch_norm=True, **kw))
    rng = np.random.default_rng(batch)
    neurons = 6
    y = layer_outputs(c, rng, batch, neurons)
    bn = BatchNormState(c, neurons)
    bn.gamma = rng.integers(-(1 << (c.weight_bits - 1)), 1 << (c.weight_bits - 1), neurons)
    bn.gamma[:3] = 1 << (c.weight_frac - 1)
    bn.mean = rng.integers(0, 1 << (c.act_bits + c.bn_stat_frac), neurons)
    bn.var = rng.integers(0, 1 << (2 * c.act_bits + c.bn_stat_frac - 2), neurons)
    golden = BatchNormState(c, neurons)
    golden.restore(bn.state())
    want_z, want_xhat, want_active, want_h = normalise(c, golden, y, training)
    z, xhat, active, h, mean, var = run_layer(c, bn, y, training, lanes)
    np.testing.assert_array_equal(z, want_z)
    np.testing.assert_array_equal(xhat, want_xhat)
    np.testing.assert_array_equal(active, want_active)
    if training:
        np.testing.assert_array_equal(h, want_h)
    np.testing.assert_array_equal(mean, golden.mean)
    np.testing.assert_array_equal(var, golden.var)
    assert not active.all() or not training      # some outputs clip


def compare_layer(c, bn, y, training, lanes):
    """run_layer against the golden model's step 1b on ``bn``'s state (left unchanged)."""
    golden = BatchNormState(c, y.shape[1])
    golden.restore(bn.state())
    want_z, want_xhat, want_active, want_h = normalise(c, golden, y, training)
    z, xhat, active, h, mean, var = run_layer(c, bn, y, training, lanes)
    np.testing.assert_array_equal(xhat, want_xhat)
    np.testing.assert_array_equal(z, want_z)
    np.testing.assert_array_equal(active, want_active)
    if training:
        np.testing.assert_array_equal(h, want_h)
    np.testing.assert_array_equal(mean, golden.mean)
    np.testing.assert_array_equal(var, golden.var)
    return want_xhat, want_h


@pytest.mark.parametrize("act_frac, eps_shift", [(8, 0), (7, 8)])
def test_widest_inference_argument(act_frac, eps_shift):
    """Inference at the config's limits, 2*act_bits + bn_stat_frac = 2*weight_bits with
    bn_stat_frac = 16: running variances up to 2**32 - 1 make the inverse square root's
    argument ``(V + (eps << RF)) << RF`` 49 bits wide (its top window), and running means up to
    2**32 - 1 the widest centring ``(y << RF) - M``."""
    c = NetConfig.from_dict(dict(arch=(4, 8), classes=3, batch=5, batch_norm=True, act_bits=8,
                                 input_frac=8, act_frac=act_frac, weight_bits=16,
                                 weight_frac=14, bn_stat_frac=16, bn_eps_shift=eps_shift))
    top, eps_rf = (1 << 32) - 1, 2 * act_frac - eps_shift + 16
    rng = np.random.default_rng(act_frac)
    y = rng.integers(0, 256, (5, 8))
    y[:, 0] = [0, 255, 255, 0, 128]
    bn = BatchNormState(c, 8)
    edge = (1 << 32) - (1 << min(eps_rf, 31))            # V + (eps << RF) at or past 2**32
    bn.var = np.array([top, top - 1, edge, max(edge - 1, 0), (1 << 31) - 1, 0, top, 12345],
                      dtype=np.int64)
    bn.mean = np.array([0, top, 1 << 24, top, (1 << 24) - 1, 1 << 23, 255 << 16, 0],
                       dtype=np.int64)
    bn.gamma = np.array([-(1 << 15), (1 << 15) - 1, 1 << 13, -1, 1 << 14, 1 << 13,
                         -(1 << 14), 3 << 12], dtype=np.int64)
    a = (bn.var + (c.bn_eps() << 16)) << 16
    assert a.max() >= 1 << 48 and a.max() < 1 << 49
    compare_layer(c, bn, y, False, 4)


@pytest.mark.parametrize("lanes", [8, 1])
def test_largest_batch(lanes):
    """Training over 256 samples (the config's most, ``inv_b = 2**12``) of 12-bit outputs at
    their extremes: the widest sums ``S1``, ``S2``, ``Q`` and the widest centring
    ``B*y - S1``, then the moved running statistics."""
    c = NetConfig.from_dict(dict(arch=(4, 6), classes=3, batch=256, batch_norm=True,
                                 act_bits=12, input_frac=8, act_frac=10, weight_bits=16,
                                 round_bits=8, bn_stat_frac=8, bn_eps_shift=20,
                                 bn_momentum_shift=0))
    top = (1 << 12) - 1
    rng = np.random.default_rng(256 + lanes)
    y = rng.integers(0, top + 1, (256, 6))
    y[:, 0] = top                                           # S1 and S2 at their largest
    y[:, 1] = np.where(np.arange(256) < 128, 0, top)        # Q at its largest
    y[:, 2] = np.where(np.arange(256) == 7, top, 0)         # one sample far from the rest
    y[:, 3] = np.where(np.arange(256) == 7, 0, top)
    bn = BatchNormState(c, 6)
    bn.gamma = np.array([-(1 << 15), 1 << 13, (1 << 15) - 1, 1 << 13, -(1 << 13), 5 << 10])
    bn.var = np.array([0, (1 << 32) - 1, 1 << 20, 1 << 28, 0, 99], dtype=np.int64)
    bn.mean = np.array([(1 << 32) - 1, 0, 1 << 19, 0, 1 << 20, 7], dtype=np.int64)
    xhat, h = compare_layer(c, bn, y, True, lanes)
    assert abs(xhat).max() > 255 ** 0.5 * (1 << 10) - 64   # the far sample: sqrt(B - 1)

def run_backward(c, pz, xhat, h, active, lanes):
    """Drive BatchNormBackward over one tile (``lanes`` neurons, every sample) and return the
    deltas, the scale's gradients and the bias gradients."""
    from hw.core.batch_norm_backward import BatchNormBackward
    batch = len(pz)
    unit = BatchNormBackward(lanes, c.delta_bits, 8)
    d = np.zeros((batch, lanes), dtype=np.int64)
    grads = {}

    async def bench(ctx):
        ctx.set(unit.inv_b, batch_reciprocal(batch))
        ctx.set(unit.act_frac, c.act_frac)
        ctx.set(unit.h, [int(v) for v in h])
        for b in range(batch):
            ctx.set(unit.accumulate, {"valid": 1, "clear": int(b == 0),
                                      "pz": [int(v) for v in pz[b]],
                                      "xhat": [int(v) for v in xhat[b]]})
            await ctx.tick()
        ctx.set(unit.accumulate.valid, 0)
        ctx.set(unit.finish, 1)
        await ctx.tick()
        ctx.set(unit.finish, 0)
        left = batch
        for b in range(batch + 3):
            if b < batch:
                ctx.set(unit.apply, {"valid": 1, "tag": b, "pz": [int(v) for v in pz[b]],
                                     "xhat": [int(v) for v in xhat[b]],
                                     "active": sum(int(a) << r for r, a in
                                                   enumerate(active[b]))})
            else:
                ctx.set(unit.apply.valid, 0)
            await ctx.tick()
            o = ctx.get(unit.o)
            if o.valid:
                d[o.tag] = list(o.d)
                left -= 1
        assert left == 0
        grads["gamma"] = list(ctx.get(unit.gamma_grad))
        grads["bias"] = list(ctx.get(unit.bias_grad))

    sim = Simulator(unit)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return d, np.array(grads["gamma"]), np.array(grads["bias"])


@pytest.mark.parametrize("kw, lanes, batch", [
    (dict(), 4, 10),
    (dict(delta_bits=18, act_bits=12, input_frac=8, act_frac=10, delta_frac=12), 2, 23),
    (dict(weight_frac=10, bn_stat_frac=4, bn_eps_shift=12), 8, 5),
])
def test_backward_is_the_golden_step(kw, lanes, batch):
    """The deltas and the scale's gradient of golden_batch_norm.back_deltas, from the errors
    of a real forward step (statistics and normalise as above, a random classifier)."""
    from sw_model.golden_batch_norm import back_deltas
    c = NetConfig.from_dict(dict(arch=(4, lanes), classes=3, batch=batch, batch_norm=True,
                                 **kw))
    rng = np.random.default_rng(batch + lanes)
    y = layer_outputs(c, rng, batch, lanes)
    bn = BatchNormState(c, lanes)
    _, xhat, bn_active, h = normalise(c, bn, y, True)
    errors = rng.integers(-(1 << (c.error_bits - 2)), 1 << (c.error_bits - 2), (batch, 3))
    feedback = rng.choice([-3.0, -1.0, 1.0, 3.0], (3, lanes))
    active = rng.random((batch, lanes)) < 0.8
    want_d, want_p2 = back_deltas(c, 0, errors.astype(np.float64), feedback, h, active,
                                  bn_active, xhat)
    # The core's back projection gives pz (its rounding is the BACK drain's, tested there).
    from sw_model.golden_batch_norm import rne_int, sat_s_int
    p = (errors @ feedback).astype(np.int64)
    pz = sat_s_int(rne_int(p, c.delta_shift(0)), c.delta_bits) * bn_active
    d, p2, bias = run_backward(c, pz, xhat, h, active, lanes)
    np.testing.assert_array_equal(d, want_d)
    np.testing.assert_array_equal(p2, want_p2)
    np.testing.assert_array_equal(bias, want_d.sum(axis=0))
    assert (d != 0).any() and (~active).any()


@pytest.mark.parametrize("act_frac", [12, 0])
def test_backward_extremes(act_frac):
    """256 samples with the errors at their extremes (``pz`` at +-2**19, of the sign of
    ``xhat``: the largest ``P2`` and ``m2``; or all alike: the largest ``P1`` and ``m1``), the
    scales at +-2**23, and ``xhat`` of a real normalisation at its widest (one sample far from
    the 255 others: ``sqrt(255)``), with ``act_frac`` 12 and 0: ``P1``, ``P2``, ``m1``, ``m2``
    and ``U`` at the sizes the golden model's exactness bound allows, against the golden
    model."""
    from sw_model.golden_batch_norm import back_deltas
    c = NetConfig.from_dict(dict(arch=(4, 4), classes=3, batch=256, batch_norm=True,
                                 delta_bits=20, delta_frac=12, act_bits=12, input_frac=8,
                                 act_frac=act_frac, round_bits=8, bn_eps_shift=0,
                                 classifier_exp=(12,)))
    lo, hi, top = -(1 << 19), (1 << 19) - 1, (1 << 12) - 1
    rng = np.random.default_rng(act_frac)
    b = np.arange(256)
    y = np.stack([np.where(b == 3, top, 0), np.where(b < 128, 0, top),
                  rng.integers(0, top + 1, 256), np.where(b == 200, 0, top)], axis=1)
    bn = BatchNormState(c, 4)
    _, xhat, bn_active, _ = normalise(c, bn, y, True)
    pz = np.stack([np.where(xhat[:, 0] >= 0, hi, lo), np.where(xhat[:, 1] >= 0, lo, hi),
                   np.full(256, lo), rng.integers(lo, hi + 1, 256)], axis=1)
    h = np.array([-(1 << 23), (1 << 23) - 1, 1 << 12, -(1 << 23)])
    active = rng.random((256, 4)) < 0.9
    shift = c.delta_shift(0)
    errors = (pz << shift).astype(np.float64)               # e @ I, exact: pz itself
    ones = np.ones((256, 4), dtype=bool)
    want_d, want_p2 = back_deltas(c, 0, errors, np.eye(4), h, active, ones, xhat)
    d, p2, bias = run_backward(c, pz, xhat, h, active, 4)
    np.testing.assert_array_equal(d, want_d)
    np.testing.assert_array_equal(p2, want_p2)
    np.testing.assert_array_equal(bias, want_d.sum(axis=0))
    assert abs(want_d).max() == 1 << 19 and (abs(want_d) < (1 << 19) - 1).any()
