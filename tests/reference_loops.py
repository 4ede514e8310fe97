"""Direct loop implementations with Python integers: an independent derivation
of the golden model's arithmetic from docs/fixed-point.md, written without
numpy vectorisation or the fixedpoint and update modules."""

DITHER = 8      # dither bits of a stochastic update (docs/fixed-point.md)


def rnd(value, shift):
    return (value + (1 << (shift - 1))) >> shift if shift else value


def dither(cfg, seed, kind, o, f, word, lane):
    """The seed XORed with the coordinates' bits, packed lane, word, f, o, kind from bit 0 up,
    bit n landing on dither bit DITHER - 1 - n % DITHER."""
    kk = cfg.kernel ** 2
    words = max(-(-cfg.out_h * cfg.out_w // kk), cfg.in_c)
    widths = [kk.bit_length(), max(1, (words - 1).bit_length()), max(1, (cfg.filters - 1).bit_length()),
              max(1, (cfg.classes - 1).bit_length()), 1]
    packed, at = 0, 0
    for value, width in zip((lane, word, f, o, kind), widths):
        packed |= value << at
        at += width
    out = seed
    for n in range(at):
        if packed >> n & 1:
            out ^= 1 << (DITHER - 1 - n % DITHER)
    return out


def step(cfg, grad, seed, kind, o, f, word, lane):
    """The update's rounded step: round half up, or the stochastic rule with the weight's dither."""
    shift = cfg.frac_bits + cfg.lr_shift
    if cfg.update_rounding == "nearest":
        return rnd(grad, shift)
    scaled = grad >> (shift - DITHER) if shift >= DITHER else grad << (DITHER - shift)
    return (scaled + dither(cfg, seed, kind, o, f, word, lane)) >> DITHER


def sat(value, width):
    return max(-(1 << (width - 1)), min((1 << (width - 1)) - 1, value))


def conv_forward(cfg, x, w, b):
    f_, k = cfg.frac_bits, cfg.kernel
    out = [[[0] * cfg.out_w for _ in range(cfg.out_h)] for _ in range(cfg.filters)]
    for f in range(cfg.filters):
        for y in range(cfg.out_h):
            for xx in range(cfg.out_w):
                acc = int(b[f]) << f_
                for c in range(cfg.in_c):
                    for i in range(k):
                        for j in range(k):
                            acc += int(w[f][c][i][j]) * int(x[c][y + i][xx + j])
                out[f][y][xx] = sat(rnd(acc, f_), cfg.data_width)
    return out


def dense_backward(cfg, a_flat, delta, w_flat, b, seed=None):
    f_, kk, positions = cfg.frac_bits, cfg.kernel ** 2, cfg.out_h * cfg.out_w
    grad_a = []
    for k in range(len(a_flat)):
        acc = sum(int(w_flat[o][k]) * int(delta[o]) for o in range(cfg.classes))
        grad_a.append(sat(rnd(acc, f_), cfg.data_width))
    new_w = [[0] * len(a_flat) for _ in range(cfg.classes)]
    for o in range(cfg.classes):
        for k in range(len(a_flat)):
            f, pos = divmod(k, positions)
            delta_w = step(cfg, int(delta[o]) * int(a_flat[k]), seed, 0, o, f, pos // kk, pos % kk)
            new_w[o][k] = sat(int(w_flat[o][k]) - delta_w, cfg.data_width)
    new_b = [sat(int(b[o]) - step(cfg, int(delta[o]) << f_, seed, 0, o, 0, 0, kk), cfg.data_width)
             for o in range(cfg.classes)]
    return grad_a, new_w, new_b


def conv_backward(cfg, x, grad_z, w, b, seed=None):
    f_, k = cfg.frac_bits, cfg.kernel
    new_w = [[[[0] * k for _ in range(k)] for _ in range(cfg.in_c)] for _ in range(cfg.filters)]
    new_b = []
    for f in range(cfg.filters):
        for c in range(cfg.in_c):
            for i in range(k):
                for j in range(k):
                    acc = sum(int(grad_z[f][y][xx]) * int(x[c][y + i][xx + j])
                              for y in range(cfg.out_h) for xx in range(cfg.out_w))
                    new_w[f][c][i][j] = sat(int(w[f][c][i][j]) - step(cfg, acc, seed, 1, 0, f, c, i * k + j),
                                            cfg.data_width)
        acc = sum(int(grad_z[f][y][xx]) << f_ for y in range(cfg.out_h) for xx in range(cfg.out_w))
        new_b.append(sat(int(b[f]) - step(cfg, acc, seed, 1, 0, f, 0, k * k), cfg.data_width))
    return new_w, new_b
