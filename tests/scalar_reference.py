"""A slow, literal, pure-integer reading of docs/ARITHMETIC.md for tiny networks.

Independent of the vectorised golden model: its own bit recurrence, loops instead of matrices,
integer shifts instead of float64. Tests compare the two bit for bit.
"""

from contract.lfsr_taps import TAPS
from contract.config import softmax_table
from math import isqrt


class Bits:
    def __init__(self, width, seed, chunk):
        self.b = [(seed >> n) & 1 for n in range(width)]
        self.width, self.chunk, self.pos = width, chunk, 0

    def next(self):
        need = (self.pos + 1) * self.chunk
        while len(self.b) < need:
            n = len(self.b)
            v = 0
            for t in TAPS[self.width]:
                v ^= self.b[n - t]
            self.b.append(v)
        v = sum(self.b[self.pos * self.chunk + r] << r for r in range(self.chunk))
        self.pos += 1
        return v


def sat_s(x, n):
    return max(-(1 << (n - 1)), min((1 << (n - 1)) - 1, x))


def sat_u(x, n):
    return max(0, min((1 << n) - 1, x))


def rne(x, s):
    if s == 0:
        return x
    q = x >> s
    r = x - (q << s)
    h = 1 << (s - 1)
    return q + (1 if r > h or (r == h and q & 1) else 0)


def sr(x, s, r, rbits):
    if s >= rbits:
        return (x + (r << (s - rbits))) >> s
    return (x + (r >> (rbits - s))) >> s


def inv_sqrt(a):
    """``(R[u], j)`` of ARITHMETIC.md, "Batch normalisation": the nearest integer to
    ``4096 / sqrt(u)`` is ``(floor(8192 / sqrt(u)) + 1) // 2`` (no ties), and
    ``floor(sqrt(x)) = isqrt(floor(x))``."""
    j = 0
    while a.bit_length() - 2 * j > 8:
        j += 1
    u = a >> (2 * j)
    return (isqrt((1 << 26) // u) + 1) // 2, j


def normalise(c, g, mean, var, ys, n, training):
    """Step 1b for neuron n over the samples ys (lists of activations); returns the outputs, the
    xhat, the bn_active flags and h, and moves mean/var (lists, index n) when training."""
    B, af, rf = len(ys), c.act_frac, c.bn_stat_frac
    eps = 1 << (2 * af - c.bn_eps_shift)
    col = [y[n] for y in ys]
    if training:
        s1, s2 = sum(col), sum(v * v for v in col)
        q = B * s2 - s1 * s1
        r, j = inv_sqrt(q + B * B * eps)
        cs = [B * v - s1 for v in col]
    else:
        r, j = inv_sqrt((var[n] + (eps << rf)) << rf)
        cs = [(v << rf) - mean[n] for v in col]
    xh = [sat_s(rne(cv * r, 12 + j - af), 16) for cv in cs]
    zz = [rne(g[n] * x, c.weight_frac) + (1 << (c.act_bits - 1)) for x in xh]
    z = [sat_u(v, c.act_bits) for v in zz]
    ba = [1 if 0 <= v <= (1 << c.act_bits) - 1 else 0 for v in zz]
    h = None
    if training:
        h = sat_s(rne(g[n] * B * r, 12 + j + c.weight_frac - af - 12), 24)
        inv_b = -(-(1 << 20) // B)                    # ceil(2**20 / B)
        mb = (s1 * inv_b) >> (20 - rf)
        vb = (((q * inv_b) >> 20) * inv_b) >> (20 - rf)
        mean[n] += (mb - mean[n]) >> c.bn_momentum_shift
        var[n] += (vb - var[n]) >> c.bn_momentum_shift
    return z, xh, ba, h


def draw_weights(c, i, rows, cols):
    """Layer i's initial weights, drawn in weight-memory order: output tiles of P rows, columns,
    then the P rows of a word."""
    bits, P = c.init_bits_for(cols), c.array_rows
    st = Bits(c.lfsr_width, c.stream_seed("init", i), 16)
    w = [[None] * cols for _ in range(rows)]
    for ot in range(0, rows, P):
        for j in range(cols):
            for p in range(P):
                u = st.next()
                if ot + p < rows:
                    w[ot + p][j] = (u >> (16 - bits)) - (1 << (bits - 1))
    return w


def draw_classifier(c, i, width):
    """Layer i's local classifier M (classes x width) and its feedback K."""
    kb, W = c.classifier_bits, c.lfsr_width
    st = Bits(W, c.stream_seed("classifier", i), kb)
    m = [[0] * width for _ in range(c.classes)]
    for n in range(width):
        for cl in range(c.classes):
            m[cl][n] = 2 * st.next() - ((1 << kb) - 1)
    if c.feedback != "sign":
        return m, m
    st = Bits(W, c.stream_seed("feedback", i), kb)
    k = [[0] * width for _ in range(c.classes)]
    for n in range(width):
        for cl in range(c.classes):
            mag = abs(2 * st.next() - ((1 << kb) - 1))
            k[cl][n] = mag if m[cl][n] > 0 else -mag
    return m, k


def keep_scale(c):
    """``2**16 / (256 - dropout)``, rounded to nearest, ties to even."""
    q, r = divmod(1 << 16, 256 - c.dropout)
    return q + (1 if 2 * r > 256 - c.dropout or (2 * r == 256 - c.dropout and q & 1) else 0)


def update_layer(c, i, rnd, w, b, G, g, scale=None):
    """Step 7 of layer i in weight-memory order: output tiles of P rows; in each, the columns
    j < cols, the bias column (j = cols) and, with batch normalisation (``scale`` = the scales
    and their gradients), the scale column (j = cols + 1), each a word of P rows."""
    rows, cols, P = len(w), len(w[0]), c.array_rows
    stoch = c.rounding == "stochastic"

    def step(grad, shift, r):
        return sr(grad, shift, r, c.round_bits) if stoch else rne(grad, shift)

    for ot in range(0, rows, P):
        for j in range(cols + (2 if scale else 1)):
            for p in range(P):
                n = ot + p
                r = rnd.next() if stoch else None
                if n >= rows:
                    continue
                if j < cols:
                    w[n][j] = sat_s(w[n][j] - step(G[n][j], c.update_shift(i), r), c.weight_bits)
                elif j == cols:
                    b[n] = sat_s(b[n] - step(g[n], c.bias_update_shift(i), r), c.weight_bits)
                else:
                    gammas, grads = scale
                    gammas[n] = sat_s(gammas[n] - step(grads[n], c.gamma_shift(i), r),
                                      c.weight_bits)


class ScalarNet:
    def __init__(self, cfg):
        self.cfg = c = cfg
        W = c.lfsr_width
        self.w, self.b, self.m, self.k = [], [], [], []
        for i in range(c.layers):
            nin, nout = c.fan_in(i), c.neurons(i)
            self.w.append(draw_weights(c, i, nout, nin))
            self.b.append([0] * nout)
            m, k = draw_classifier(c, i, nout)
            self.m.append(m)
            self.k.append(k)
        if c.batch_norm:
            self.g = [[1 << (c.weight_frac - 1)] * c.neurons(i) for i in range(c.layers)]
            self.mean = [[0] * c.neurons(i) for i in range(c.layers)]
            self.var = [[1 << (2 * c.act_frac + c.bn_stat_frac)] * c.neurons(i)
                        for i in range(c.layers)]
        self.rnd = Bits(W, c.stream_seed("round"), c.round_bits)
        self.drop = Bits(W, c.stream_seed("dropout"), 8)

    def unit(self, i, acc):
        """Step 1 after the sum: the activation and the clipped ReLU's derivative."""
        c = self.cfg
        r = rne(acc, c.forward_shift(i))
        return sat_u(r, c.act_bits), 1 if acc > 0 and r <= (1 << c.act_bits) - 1 else 0

    def forward(self, i, x):
        """A fully connected layer's step 1 for one sample."""
        y, act = [], []
        for n in range(len(self.w[i])):
            acc = (sum(self.w[i][n][j] * x[j] for j in range(len(x)))
                   + (self.b[i][n] << self.cfg.in_frac(i)))
            v, a = self.unit(i, acc)
            y.append(v)
            act.append(a)
        return y, act

    def scores(self, i, y):
        c = self.cfg
        return [sat_s(rne(sum(self.m[i][cl][n] * y[n] for n in range(len(y))), c.score_shift(i)),
                      c.score_bits) for cl in range(c.classes)]

    def train_batch(self, xs, labels):
        c = self.cfg
        xs = [list(map(int, x)) for x in xs]
        for i in range(c.layers):
            ys, acts = [], []
            for x in xs:
                y, act = self.forward(i, x)
                ys.append(y)
                acts.append(act)
            if c.dropout:
                ks = keep_scale(c)
                # Forward order: output tiles of P neurons, sample groups of Q, neuron-major.
                P, Q, nb, nn = c.array_rows, c.array_cols, len(xs), c.neurons(i)
                for ot in range(0, nn, P):
                    for sg in range(0, nb, Q):
                        for p in range(P):
                            for q in range(Q):
                                u = self.drop.next()
                                n, b = ot + p, sg + q
                                if n >= nn or b >= nb:
                                    continue
                                if u >= c.dropout:
                                    ys[b][n] = sat_u(rne(ys[b][n] * ks, 8), c.act_bits)
                                else:
                                    ys[b][n] = acts[b][n] = 0
            if c.batch_norm:
                nn = c.neurons(i)
                cols = [normalise(c, self.g[i], self.mean[i], self.var[i], ys, n, True)
                        for n in range(nn)]
                # z enters every product as the signed z - 2**(act_bits - 1)
                ys = [[cols[n][0][b] - (1 << (c.act_bits - 1)) for n in range(nn)]
                      for b in range(len(ys))]
                xhat = [[cols[n][1][b] for n in range(nn)] for b in range(len(ys))]
                bact = [[cols[n][2][b] for n in range(nn)] for b in range(len(ys))]
                hs = [cols[n][3] for n in range(nn)]
            ds = []
            for y, act, lab in zip(ys, acts, labels):
                s = self.scores(i, y)
                e = []
                if c.loss == "softmax-ce":
                    F, L = c.score_frac, c.softmax_lut_bits
                    table = softmax_table(L)
                    top = max(s)
                    q = []
                    for v in s:
                        z = top - v
                        n, f = z // (1 << F), z % (1 << F)
                        q.append(table[f // (1 << (F - L))] // (1 << n) if n < 62 else 0)
                    for cl in range(c.classes):
                        pc = q[cl] * (1 << F) // sum(q)
                        e.append(sat_s(pc - ((1 << F) if cl == lab else 0), c.error_bits))
                for cl in range(c.classes if c.loss == "square-hinge" else 0):
                    t = 1 if cl == lab else -1
                    e.append(sat_s(-t * max(0, (1 << c.score_frac) - t * s[cl]), c.error_bits))
                d = []
                for n in range(len(y)):
                    v = sat_s(rne(sum(self.k[i][cl][n] * e[cl] for cl in range(c.classes)),
                                  c.delta_shift(i)), c.delta_bits)
                    d.append(v if c.batch_norm else v * act[n])
                ds.append(d)
            if c.batch_norm:
                # Step 5 through the normalisation: ds holds pd; make pz, then d.
                B, af, nn = len(ys), c.act_frac, c.neurons(i)
                pz = [[ds[b][n] * bact[b][n] for n in range(nn)] for b in range(B)]
                p2s = []
                for n in range(nn):
                    p1 = sum(pz[b][n] for b in range(B))
                    p2 = sum(pz[b][n] * xhat[b][n] for b in range(B))
                    p2s.append(p2)
                    inv_b = -(-(1 << 20) // B)
                    m1, m2 = (p1 * inv_b) >> (20 - af), (p2 * inv_b) >> 20
                    for b in range(B):
                        u = (pz[b][n] << af) - m1 - rne(xhat[b][n] * m2, af)
                        ds[b][n] = sat_s(rne(u * hs[n], af + 12), c.delta_bits) * acts[b][n]
            rows, cols = c.neurons(i), c.fan_in(i)
            G = [[sum(ds[b][n] * xs[b][j] for b in range(len(xs))) for j in range(cols)]
                 for n in range(rows)]
            g = [sum(ds[b][n] for b in range(len(xs))) for n in range(rows)]
            update_layer(c, i, self.rnd, self.w[i], self.b[i], G, g,
                         (self.g[i], p2s) if c.batch_norm else None)
            xs = ys

    def predict(self, x):
        x = list(map(int, x))
        out = []
        for i in range(self.cfg.layers):
            x, _ = self.forward(i, x)
            if self.cfg.batch_norm:
                x = [normalise(self.cfg, self.g[i], self.mean[i], self.var[i], [x], n, False)[0][0]
                     - (1 << (self.cfg.act_bits - 1)) for n in range(len(x))]
            s = self.scores(i, x)
            out.append(s.index(max(s)))
        return out
