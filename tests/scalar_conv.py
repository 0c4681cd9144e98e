"""A slow, literal, pure-integer reading of docs/ARITHMETIC.md, "Convolutional layers", for
tiny networks: loops over samples, filters, positions and kernel taps; no im2col, no NumPy.
Independent of sw_model/golden_conv.py (it shares only the config, the architecture parser and
the scalar helpers of tests/scalar_reference.py)."""

from contract.architecture import Conv
from tests.scalar_reference import (Bits, ScalarNet, draw_classifier, draw_weights,
                                    keep_scale, rne, sat_s, sat_u, update_layer)


class ScalarConvNet(ScalarNet):
    def __init__(self, cfg, arch):
        # ScalarNet's own draws assume fully connected sizes: the layers are drawn here.
        self.cfg, self.arch = c, a = cfg, arch
        W = c.lfsr_width
        self.w, self.b, self.m, self.k = [], [], [], []
        for i, layer in enumerate(a.layers):
            rows, cols = layer.rows, layer.fan_in
            self.w.append(draw_weights(c, i, rows, cols))
            self.b.append([0] * rows)
            m, k = draw_classifier(c, i, layer.outputs)
            self.m.append(m)
            self.k.append(k)
        self.rnd = Bits(W, c.stream_seed("round"), c.round_bits)
        self.drop = Bits(W, c.stream_seed("dropout"), 8)

    # ---- one layer (ScalarNet's unit, fully connected forward and scores serve too) --------
    def conv_forward(self, i, x):
        """One sample: the pooled (or not) output, its active flags, each output's
        winner (conv position), and the patch of every conv position."""
        c, layer = self.cfg, self.arch.layers[i]
        ch, h, w = layer.in_shape
        f_n, ho, wo = layer.conv_shape
        K = layer.kernel
        pad = (K - 1) // 2 if layer.padding == "same" else 0
        patches, y, act = {}, {}, {}
        for r in range(ho):
            for s in range(wo):
                patch = []
                for cc in range(ch):
                    for kh in range(K):
                        for kw in range(K):
                            rr, ss = r + kh - pad, s + kw - pad
                            inside = 0 <= rr < h and 0 <= ss < w
                            patch.append(x[(cc * h + rr) * w + ss] if inside else 0)
                patches[r, s] = patch
                for f in range(f_n):
                    acc = (sum(self.w[i][f][j] * patch[j] for j in range(len(patch)))
                           + (self.b[i][f] << c.in_frac(i)))
                    y[f, r, s], act[f, r, s] = self.unit(i, acc)
        out, out_act, winner = [], [], []
        fo, hp, wp = layer.out_shape
        for f in range(fo):
            for r in range(hp):
                for s in range(wp):
                    if layer.pool:
                        cands = [(2 * r, 2 * s), (2 * r, 2 * s + 1), (2 * r + 1, 2 * s),
                                 (2 * r + 1, 2 * s + 1)]
                        best = cands[0]
                        for cand in cands[1:]:       # strictly larger: the first max wins
                            if y[(f,) + cand] > y[(f,) + best]:
                                best = cand
                    else:
                        best = (r, s)
                    out.append(y[(f,) + best])
                    out_act.append(act[(f,) + best])
                    winner.append((f,) + best)
        return out, out_act, winner, patches

    def dropout(self, ys, acts, layer):
        c = self.cfg
        ks = keep_scale(c)
        P, Q, nb = c.array_rows, c.array_cols, len(ys)
        if isinstance(layer, Conv):
            chans, S = layer.out_shape[0], layer.out_shape[1] * layer.out_shape[2]
        else:
            chans, S = layer.neurons, 1
        for ot in range(0, chans, P):
            for sg in range(0, nb, Q):
                for pos in range(S):
                    for p in range(P):
                        for qq in range(Q):
                            u = self.drop.next()
                            ch, b = ot + p, sg + qq
                            if ch >= chans or b >= nb:
                                continue
                            n = ch * S + pos
                            if u >= c.dropout:
                                ys[b][n] = sat_u(rne(ys[b][n] * ks, 8), c.act_bits)
                            else:
                                ys[b][n] = acts[b][n] = 0

    # ---- training ----------------------------------------------------------------------------
    def train_batch(self, xs, labels):
        c = self.cfg
        xs = [list(map(int, x)) for x in xs]
        for i, layer in enumerate(self.arch.layers):
            conv = isinstance(layer, Conv)
            runs = [self.conv_forward(i, x) if conv else self.forward(i, x) + (None, None)
                    for x in xs]
            ys = [list(r[0]) for r in runs]
            acts = [list(r[1]) for r in runs]
            if c.dropout:
                self.dropout(ys, acts, layer)
            ds = []
            for y, act, lab in zip(ys, acts, labels):
                s = self.scores(i, y)
                e = []
                for cl in range(c.classes):
                    t = 1 if cl == lab else -1
                    e.append(sat_s(-t * max(0, (1 << c.score_frac) - t * s[cl]), c.error_bits))
                ds.append([sat_s(rne(sum(self.k[i][cl][n] * e[cl] for cl in range(c.classes)),
                                     c.delta_shift(i)), c.delta_bits) * act[n]
                           for n in range(len(y))])
            rows, cols = len(self.w[i]), layer.fan_in
            G = [[0] * cols for _ in range(rows)]
            g = [0] * rows
            for b in range(len(xs)):
                if conv:
                    # each output's delta reaches its winner's conv position
                    _, _, winner, patches = runs[b]
                    for n, (f, r, s) in enumerate(winner):
                        if ds[b][n]:
                            for j in range(cols):
                                G[f][j] += ds[b][n] * patches[r, s][j]
                            g[f] += ds[b][n]
                else:
                    for n in range(rows):
                        for j in range(cols):
                            G[n][j] += ds[b][n] * xs[b][j]
                        g[n] += ds[b][n]
            update_layer(c, i, self.rnd, self.w[i], self.b[i], G, g)
            xs = ys

    def predict(self, x):
        x = list(map(int, x))
        out = []
        for i, layer in enumerate(self.arch.layers):
            x = (self.conv_forward(i, x) if isinstance(layer, Conv)
                 else self.forward(i, x))[0]
            s = self.scores(i, x)
            out.append(s.index(max(s)))
        return out
