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
