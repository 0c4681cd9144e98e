"""Energy estimates per training sample: operation and access counts times per-operation energies.

The energies are those of M. Horowitz, "Computing's energy problem (and what we can do about
it)", ISSCC 2014, for a 45 nm process at 0.9 V. Its table gives, among others: integer add
8 bit 0.03 pJ, 32 bit 0.1 pJ; integer multiply 8 bit 0.2 pJ, 32 bit 3.1 pJ; memory, 64 bit:
cache 8 KB 10 pJ, 32 KB 20 pJ, 1 MB 100 pJ, DRAM 1.3-2.6 nJ. What is used here:

* a ``a x b``-bit multiply: ``0.2 * a * b / 64`` pJ. A multiplier's energy grows about with the
  product of its operand widths (the 32-bit multiply, 3.1 pJ, is 15.5 times the 8-bit one for
  16 times the product).
* an ``n``-bit add: ``0.1 * n / 32`` pJ (the 32-bit figure per bit; the 8-bit one, 0.03 pJ, is
  within 20 % of it).
* an on-chip SRAM access: the 8 KB cache's 10 pJ per 64 bits, ``10 / 64`` pJ a bit, for reads
  and writes alike (the table gives one figure per access). The larger memories of the table cost
  more (20 pJ at 32 KB, 100 pJ at 1 MB): a weight memory of 50 KB or more on chip would cost 2 to
  10 times this figure, so the SRAM term is a lower bound.
* an off-chip DRAM access: the table's range, 1.3 nJ (low) to 2.6 nJ (high) per 64 bits, per bit
  ``1300 / 64`` to ``2600 / 64`` pJ; both ends are reported.

Every memory access is charged by its bits: a 16-bit weight a quarter of a 64-bit access, an
8-bit pixel an eighth.

One estimate lives here. :func:`training_energy` (used by ``lela explore``) is it for a board's
config alone: the local-error model's accesses (:func:`model_accesses`) on a chip that holds the
working buffer and every weight, as the boards do.

:func:`minibatch_energy` takes the accesses of one mini-batch, split into MAC lane operations,
on-chip SRAM bits and off-chip DRAM bits (:class:`Accesses`), from one of:

* :func:`counter_accesses`: the device's counters after a mini-batch (``mac_busy_cycles``,
  ``ext_read_words``, ``ext_write_words``). MACs are ``mac_busy_cycles x array_rows x
  array_cols``: every lane of a busy beat, including the lanes a partly filled tile leaves idle
  (10 classes on a 4-row array fill 10 of 12 rows), so they exceed the MAC operations of
  host.throughput.macs_per_sample by 0.2-1.4 % on the networks measured (:func:`mac_beats`
  gives the beats exactly). The weight counters count weights (the bus adds ``array_rows`` per
  word); they are SRAM accesses when the weight memory is on chip, DRAM accesses when it is
  external.
* :func:`model_accesses`: the traffic model of docs/TRAFFIC.md (sw_model/traffic.py) on a chip
  of ``onchip_words`` words, for local errors or backprop: its external words are DRAM; a layer
  whose weights it keeps on chip costs the same 2 reads and 1 write a mini-batch in SRAM (the
  RTL's dataflow); an activation vector backprop keeps on chip costs an SRAM write and read
  (the input only the read again), where a spilled one costs the same in DRAM. MACs are
  :func:`mac_beats` x lanes on the same array.

In both, the mini-batch's pixels and labels (``B * (N[0] + 1)`` words of ``act_bits``) are read
from DRAM, as in the traffic model (the RTL gets them over the UART). What is not counted: the
operand buffers feeding the array on every beat (the weight slab, the activation, error and
delta buffers: the same per beat for both algorithms), the LFSRs that regenerate the local
classifiers, control, the host link, leakage, and everything an FPGA adds. This is a 45 nm ASIC
estimate of the arithmetic and the memories' accesses, for comparing algorithms and
configurations, not a board's power.
"""

from dataclasses import dataclass, field

from .throughput import macs_per_sample

__all__ = ["HOROWITZ_45NM_PJ", "Accesses", "training_energy", "array_widths", "mac_pj",
           "mac_beats", "mac_ops", "counter_accesses", "model_accesses", "minibatch_energy",
           "working_buffer_words"]

#: Horowitz, ISSCC 2014, 45 nm, 0.9 V: energies in pJ. The DRAM's is a range per 64-bit access.
HOROWITZ_45NM_PJ = {"mult_8bit": 0.2, "add_32bit": 0.1, "sram_8kb_read_64bit": 10.0,
                    "dram_64bit_low": 1300.0, "dram_64bit_high": 2600.0}

SOURCE = ("M. Horowitz, Computing's energy problem (and what we can do about it), ISSCC 2014, "
          "45 nm, 0.9 V: 8-bit multiply 0.2 pJ, 32-bit add 0.1 pJ, 64-bit access of an 8 KB "
          "SRAM 10 pJ, 64-bit DRAM access 1.3-2.6 nJ")


def training_energy(cfg):
    """pJ per training sample of ``cfg``'s network with its weights in on-chip memory (the
    boards'): :func:`minibatch_energy` of the local-error model's accesses, with ``total_pj``
    the total at the DRAM's low figure (the DRAM moves only the mini-batch's input),
    ``weight_memory_pj`` the SRAM term and ``macs`` the MAC lane operations a sample."""
    words = sum(n * j + n for j, n in zip(cfg.arch[:-1], cfg.arch[1:]))
    accesses, _ = model_accesses(cfg, "local_errors", working_buffer_words(cfg) + words)
    e = minibatch_energy(cfg, accesses)
    return {**e, "total_pj": e["total_pj_low"], "weight_memory_pj": e["sram_pj"],
            "macs": accesses.macs / cfg.batch, "source": SOURCE + " (host/energy.py)"}


# ---- per-mini-batch accesses -------------------------------------------------------------

@dataclass
class Accesses:
    """One mini-batch's operations: ``macs`` MAC lane operations, and the words read or written
    in on-chip SRAM and off-chip DRAM, by kind: ``{kind: (words, bits a word)}``."""
    batch: int
    macs: int
    mac_ops: int = 0                                   # MACs without idle lanes (information)
    sram: dict = field(default_factory=dict)
    dram: dict = field(default_factory=dict)

    def bits(self, where):
        return sum(words * bits for words, bits in getattr(self, where).values())


def array_widths(cfg):
    """``(a, b, accumulator)`` bits of the RTL's MAC array (hw/params.py, hw/mac_array.py):
    ``a`` a weight, delta or classifier weight, ``b`` an activation (2 bits more: its
    centred form) or an error, the accumulator wide enough for the longest sum."""
    a = max(cfg.weight_bits, cfg.delta_bits, cfg.classifier_bits + 2)
    b = max(cfg.act_bits + 2, cfg.error_bits)
    depth = max(max(cfg.arch[:-1]) + 1, max(cfg.arch[1:]), cfg.classes, cfg.batch)
    return a, b, a + b + max(0, (depth - 1).bit_length())


def mac_pj(cfg, table=HOROWITZ_45NM_PJ):
    """pJ of one MAC lane operation: an ``a x b`` multiply and an accumulator-wide add."""
    a, b, acc = array_widths(cfg)
    return table["mult_8bit"] * a * b / 64 + table["add_32bit"] * acc / 32


def _layers(arch, classes, algorithm):
    """``[(inputs, outputs)]`` of the trained layers: backprop adds its output layer."""
    layers = list(zip(arch[:-1], arch[1:]))
    if algorithm == "backprop":
        layers.append((arch[-1], classes))
    elif algorithm != "local_errors":
        raise ValueError(f"algorithm must be 'local_errors' or 'backprop', not {algorithm!r}")
    return layers


def mac_ops(arch, classes, algorithm):
    """MAC operations of one sample. Local errors (host.throughput.macs_per_sample): per layer of
    ``n`` neurons on ``j`` inputs, forward ``n*j``, scores ``n*C``, back projection ``C*n``,
    gradient ``n*j``. Backprop: forward and gradient ``n*j`` for every layer including the
    output layer ``N[L] -> C``, and the error's backward pass through the weights, ``n*j``, for
    every layer but the first (the input needs no error)."""
    if algorithm == "local_errors":
        return macs_per_sample(arch, classes)
    layers = _layers(arch, classes, algorithm)
    return sum(2 * n * j for j, n in layers) + sum(n * j for j, n in layers[1:])


def mac_beats(arch, classes, batch, rows, cols, algorithm="local_errors"):
    """Beats of a ``rows x cols`` MAC array (``P`` neurons x ``Q`` samples) for one mini-batch.

    Local errors, per layer, as the RTL runs them (equal to ``mac_busy_cycles`` for every
    network measured, tests/test_energy.py): forward ``ceil(n/P) ceil(B/Q) (j+1)`` (the bias is
    one more beat), scores ``ceil(C/P) ceil(B/Q) n``, back projection ``ceil(n/P) ceil(B/Q) C``,
    gradient ``ceil(n/P) ceil(j/Q) B`` (the bias gradient is summed beside the array).
    Backprop on the same array (a model, not RTL): forward and gradient as above for every
    layer including the output layer, and the backward pass ``ceil(j/P) ceil(B/Q) n`` for every
    layer but the first."""
    P, Q, B, C = rows, cols, batch, classes

    def up(x, y):
        return -(-x // y)

    layers = _layers(arch, classes, algorithm)
    beats = 0
    for k, (j, n) in enumerate(layers):
        beats += up(n, P) * up(B, Q) * (j + 1) + up(n, P) * up(j, Q) * B
        if algorithm == "local_errors":
            beats += up(C, P) * up(B, Q) * n + up(n, P) * up(B, Q) * C
        elif k:
            beats += up(j, P) * up(B, Q) * n
    return beats


def counter_accesses(cfg, counters, weights_on_chip):
    """:class:`Accesses` of one mini-batch of ``cfg.batch`` samples from the device's counters
    (their increase over the mini-batch): ``mac_busy_cycles`` beats of ``array_rows x
    array_cols`` lanes; ``ext_read_words`` and ``ext_write_words`` weights of ``weight_bits``, in
    SRAM when ``weights_on_chip``, else in DRAM; the pixels and labels from DRAM."""
    acc = Accesses(batch=cfg.batch,
                   macs=counters["mac_busy_cycles"] * cfg.array_rows * cfg.array_cols,
                   mac_ops=macs_per_sample(cfg.arch, cfg.classes) * cfg.batch)
    weights = "sram" if weights_on_chip else "dram"
    getattr(acc, weights)["weight_read"] = (counters["ext_read_words"], cfg.weight_bits)
    getattr(acc, weights)["weight_write"] = (counters["ext_write_words"], cfg.weight_bits)
    acc.dram["input_read"] = (cfg.batch * (cfg.arch[0] + 1), cfg.act_bits)
    return acc


def working_buffer_words(cfg):
    """The working buffer of the traffic model on ``cfg``'s network: the largest ``B*(N[i-1] +
    N[i])``, and ``B*(N[L] + C)`` for backprop's output layer (bench/accelerator.py)."""
    b, arch = cfg.batch, cfg.arch
    return max([b * (arch[i] + arch[i + 1]) for i in range(len(arch) - 1)]
               + [b * (arch[-1] + cfg.classes)])


def model_accesses(cfg, algorithm, onchip_words):
    """:class:`Accesses` of one mini-batch of ``cfg``'s network under the traffic model
    (sw_model/traffic.py, docs/TRAFFIC.md) for ``algorithm`` (``"local_errors"`` or
    ``"backprop"``) on a chip holding ``onchip_words`` words, and the model's
    :class:`~sw_model.traffic.Traffic`.

    DRAM: the model's external words (weights of ``weight_bits``; pixels, labels and
    activations of ``act_bits``). SRAM: 2 reads and 1 write a mini-batch of each resident
    layer's weights; for backprop, each activation vector kept on chip written and read once
    (the input read once more). MACs: :func:`mac_beats` x lanes."""
    from sw_model.traffic import backprop_traffic, local_error_traffic
    model = {"local_errors": local_error_traffic, "backprop": backprop_traffic}[algorithm]
    b, arch = cfg.batch, list(cfg.arch)
    t = model(arch, cfg.classes, b, onchip_words)
    lanes = cfg.array_rows * cfg.array_cols
    acc = Accesses(batch=b,
                   macs=mac_beats(arch, cfg.classes, b, cfg.array_rows, cfg.array_cols,
                                  algorithm) * lanes,
                   mac_ops=mac_ops(arch, cfg.classes, algorithm) * b)
    layers = _layers(arch, cfg.classes, algorithm)
    resident = sum(n * j + n for k, (j, n) in enumerate(layers) if k in t.resident_layers)
    wb, ab = cfg.weight_bits, cfg.act_bits
    if resident:
        acc.sram["weight_read"] = (2 * resident, wb)
        acc.sram["weight_write"] = (resident, wb)
    if t.weight_read:
        acc.dram["weight_read"] = (t.weight_read, wb)
        acc.dram["weight_write"] = (t.weight_write, wb)
    acc.dram["input_read"] = (t.input_read, ab)
    if algorithm == "backprop":
        vectors = [b * n for n in arch]                 # the input and each hidden layer's
        kept = [a for a in range(len(vectors)) if a not in t.spilled_acts]
        if t.act_write or t.act_read:
            acc.dram["act_write"] = (t.act_write, ab)
            acc.dram["act_read"] = (t.act_read, ab)
        if kept:
            acc.sram["act_write"] = (sum(vectors[a] for a in kept if a), ab)
            acc.sram["act_read"] = (sum(vectors[a] for a in kept), ab)
    return acc, t


def minibatch_energy(cfg, accesses, table=HOROWITZ_45NM_PJ):
    """pJ per training sample of ``accesses`` (one mini-batch of ``accesses.batch`` samples):
    ``mac_pj``, ``sram_pj``, ``dram_pj_low`` and ``dram_pj_high`` (the table's 1.3 and 2.6 nJ
    per 64 bits), ``total_pj_low`` and ``total_pj_high``."""
    b = accesses.batch
    mac = accesses.macs * mac_pj(cfg, table) / b
    sram = accesses.bits("sram") * table["sram_8kb_read_64bit"] / 64 / b
    dram = accesses.bits("dram") / 64 / b
    low, high = dram * table["dram_64bit_low"], dram * table["dram_64bit_high"]
    return {"mac_pj": mac, "sram_pj": sram, "dram_pj_low": low, "dram_pj_high": high,
            "total_pj_low": mac + sram + low, "total_pj_high": mac + sram + high}
