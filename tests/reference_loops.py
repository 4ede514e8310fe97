"""Direct loop implementations with Python integers: an independent derivation
of the golden model's arithmetic from docs/fixed-point.md, written without
numpy vectorisation or the fixedpoint module."""


def rnd(value, shift):
    return (value + (1 << (shift - 1))) >> shift if shift else value


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


def dense_backward(cfg, a_flat, delta, w_flat, b):
    f_, lr = cfg.frac_bits, cfg.lr_shift
    grad_a = []
    for k in range(len(a_flat)):
        acc = sum(int(w_flat[o][k]) * int(delta[o]) for o in range(cfg.classes))
        grad_a.append(sat(rnd(acc, f_), cfg.data_width))
    new_w = [[sat(int(w_flat[o][k]) - rnd(int(delta[o]) * int(a_flat[k]), f_ + lr), cfg.data_width)
              for k in range(len(a_flat))] for o in range(cfg.classes)]
    new_b = [sat(int(b[o]) - rnd(int(delta[o]) << f_, f_ + lr), cfg.data_width) for o in range(cfg.classes)]
    return grad_a, new_w, new_b


def conv_backward(cfg, x, grad_z, w, b):
    f_, lr, k = cfg.frac_bits, cfg.lr_shift, cfg.kernel
    new_w = [[[[0] * k for _ in range(k)] for _ in range(cfg.in_c)] for _ in range(cfg.filters)]
    new_b = []
    for f in range(cfg.filters):
        for c in range(cfg.in_c):
            for i in range(k):
                for j in range(k):
                    acc = sum(int(grad_z[f][y][xx]) * int(x[c][y + i][xx + j])
                              for y in range(cfg.out_h) for xx in range(cfg.out_w))
                    new_w[f][c][i][j] = sat(int(w[f][c][i][j]) - rnd(acc, f_ + lr), cfg.data_width)
        acc = sum(int(grad_z[f][y][xx]) << f_ for y in range(cfg.out_h) for xx in range(cfg.out_w))
        new_b.append(sat(int(b[f]) - rnd(acc, f_ + lr), cfg.data_width))
    return new_w, new_b
