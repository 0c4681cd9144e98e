"""Whether a training run diverged, and at which layer.

Looked at after every epoch (NaN and infinity after every mini-batch too); a run has diverged when

1. a weight, bias, activation or score is NaN or infinite (the float references);
2. in fixed point, at least :data:`FLOOD` of a layer's weights, and at least
   :data:`FLOOD_WEIGHTS` of them, sit at the limits of their format (a saturation flood: no
   healthy fully connected run measured had a single weight there; a first convolution's 400
   weights, whose gradients sum over every position, had 4 there while every classifier was
   still improving, docs/RESULTS.md, issue 14);
3. the top layer's test accuracy has been at most :data:`CHANCE` / classes after this epoch and
   the one before, and after this one
   a. a layer's units are nearly all silent: at least :data:`SILENT` of them fire for none of
      :data:`PROBE` test samples (its ReLUs pass no gradient any more), or
   b. a local classifier has given one class to at least :data:`COLLAPSED` of the test samples
      after both epochs while a layer below it is right on at least :data:`LEARNED` of them
      (its input carries the classes; it learned nothing but one), or
   c. in fixed point, at least :data:`SATURATING` of a layer's weights sit at the limits.

Chance-level accuracy alone, or after a single epoch, is no sign: a small network after an epoch
on a few hundred samples is at chance at every layer and gives most samples one class, and a
64-64-64-64 digits network's top layer gives one class to every test sample after its first epoch
and reaches 97 % later (docs/RESULTS.md, issue 13, has the measurements behind every threshold).
Layers are numbered from 1; for ``bp`` and ``fa`` layer ``L + 1`` is the output layer.
"""

import re

import numpy as np

from lela.checks import UserError

__all__ = ["CHANCE", "COLLAPSED", "LEARNED", "SILENT", "FLOOD", "FLOOD_WEIGHTS", "SATURATING",
           "PROBE",
           "Diverged", "class_shares", "diagnose"]

CHANCE = 1.5
COLLAPSED = 0.9
LEARNED = 0.5
SILENT = 0.95
FLOOD = 0.01
FLOOD_WEIGHTS = 8
SATURATING = 0.001
#: Test samples the activations are looked at on.
PROBE = 256


class Diverged(UserError):
    """The run diverged; ``info`` is what results.json records under ``"diverged"``."""

    def __init__(self, info, out_dir):
        self.info = info
        layer = f"layer {info['layer']}" + (" (the output layer)" if info.get("output") else "")
        super().__init__(f"training diverged at {layer} in epoch {info['epoch']}: "
                         f"{info['reason']}; try --lr {info['suggested_lr']!r} (half of "
                         f"{info['lr']!r}); see {out_dir}/results.json")


def class_shares(predictions, classes):
    """Per classifier: the largest share of the samples one class gets."""
    out = []
    for p in predictions:
        p = np.asarray(p, dtype=np.int64)
        out.append(float(np.bincount(p, minlength=classes).max() / max(1, len(p))))
    return out


def _layer_of(name, top):
    """The layer (from 1) of a FloatNet parameter: ``w0``, ``b1``, ``m2``; ``out``: ``top``."""
    found = re.fullmatch(r"[wbm](\d+)", name)
    return int(found.group(1)) + 1 if found else top


def _activations(net, probe):
    """Every hidden layer's activations on ``probe`` (float reference or golden model)."""
    if hasattr(net, "_forward"):
        acts, _ = net._forward(net._input(probe))
        return acts[1:]
    return net.layer_outputs(probe)


def _nonfinite(net, acts, probe, top, output):
    """(layer, reason) of the lowest layer holding a NaN or an infinity, else None."""
    if not hasattr(net, "parameters"):
        return None                                     # fixed point: integers
    found = [(_layer_of(name, top), 0, "its weights are NaN or infinite")
             for name, value in net.parameters().items() if not np.isfinite(value).all()]
    found += [(i + 1, 1, "its activations are NaN or infinite")
              for i, a in enumerate(acts) if not np.isfinite(a).all()]
    found += [(top if output else i + 1, 2, "its scores are NaN or infinite")
              for i, s in enumerate(net.infer(probe)) if not np.isfinite(s).all()]
    if not found:
        return None
    layer, _, reason = min(found)
    return layer, reason


def _at_limits(net):
    """Per fixed-point layer, ``(share, count)`` of its weights at the limits of their format."""
    if hasattr(net, "parameters"):
        return []
    bits = net.cfg.weight_bits
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    out = []
    for w in net.weights:
        at = (np.asarray(w) <= lo) | (np.asarray(w) >= hi)
        out.append((float(np.mean(at)), int(np.sum(at))))
    return out


def _saturated(saturation, limit, least=1):
    """(layer, share) of the lowest layer with at least ``limit`` of its weights, and at least
    ``least`` weights, at the limits."""
    return next(((i + 1, share) for i, (share, count) in enumerate(saturation)
                 if share >= limit and count >= least), None)


def _saturation(share, limit, bits):
    return f"{100 * share:.2f} % of its weights saturated at ±2**{bits - 1} (the limit is " \
           f"{100 * limit:g} %)"


def _at_chance(net, acts, accuracy, shares, before, saturation, output):
    """(layer, reason) for rule 3 (the top layer is at chance), else None; ``before`` is the
    previous epoch's shares."""
    chance = f"the top layer is at chance ({100 * accuracy[-1]:.1f} % test accuracy)"
    for i, a in enumerate(acts):
        silent = float(np.mean(~np.any(a > 0, axis=0)))
        if silent >= SILENT:
            return i + 1, (f"{chance} and {100 * silent:.0f} % of layer {i + 1}'s units fire "
                           f"for none of {len(a)} test samples")
    if not output:
        for k in range(1, len(accuracy)):
            if min(shares[k], before[k]) >= COLLAPSED and max(accuracy[:k]) >= LEARNED:
                return k + 1, (f"{chance}, layer {k + 1} gives one class to "
                               f"{100 * shares[k]:.0f} % of the test samples (two epochs "
                               f"running) while layer "
                               f"{int(np.argmax(accuracy[:k])) + 1} gets "
                               f"{100 * max(accuracy[:k]):.1f} % right")
    found = _saturated(saturation, SATURATING)
    if found:
        layer, share = found
        return layer, (f"{chance} and layer {layer} has "
                       f"{_saturation(share, SATURATING, net.cfg.weight_bits)}")
    return None


def diagnose(model, test_error, shares, classes, probe, previous=None):
    """``None``, or ``{"layer", "output", "reason"}`` when ``model`` has diverged.

    ``test_error`` and ``shares`` (:func:`class_shares`) are per classifier (one for bp and fa),
    ``previous`` the same pair after the epoch before (None after the first), ``probe`` a few
    test samples to look at the activations on."""
    net = getattr(model, "golden", model)      # the accelerator backends: their golden twin
    output = getattr(net, "output", None) is not None
    top = net.cfg.layers + 1 if output else net.cfg.layers
    accuracy = [1 - e for e in test_error]
    chance = CHANCE / classes
    with np.errstate(all="ignore"):
        acts = _activations(net, probe)
        saturation = _at_limits(net)
        found = _nonfinite(net, acts, probe, top, output)
        flood = _saturated(saturation, FLOOD, FLOOD_WEIGHTS)
        if found is None and flood is not None:
            found = flood[0], "it has " + _saturation(flood[1], FLOOD, net.cfg.weight_bits)
        if found is None and previous is not None and accuracy[-1] <= chance \
                and 1 - previous[0][-1] <= chance:
            before = previous[1] or [0.0] * len(shares)
            found = _at_chance(net, acts, accuracy, shares, before, saturation, output)
    if found is None:
        return None
    layer, reason = found
    return {"layer": int(layer), "output": output and layer == top, "reason": reason}
