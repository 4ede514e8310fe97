"""Error bounds derived by hand, shared by the tests that check the golden model against
exact or float arithmetic (tests/spec/test_softmax.py, tests/rtl/test_random_configs.py)."""

import math

from tinycl_hdl.spec.softmax import EXP_FRAC, LOG2E_FRAC, LOG2E_Q


def softmax_error_bound(width: int, frac: int, classes: int) -> float:
    """Bound on |delta_fixed - delta_exact| in real units, derived step by step.

    * ``t = d*log2(e)`` carries half an LSB of rounding (``h = 2**-(frac+1)``) and
      the constant's error ``c = |LOG2E_Q/2**15 - log2 e|`` times ``|d|``;
    * the two table entries and their product each add ``2**-(EXP_FRAC+1)`` relative;
    * the final shift adds ``eta = 2**-(EXP_FRAC+1)`` absolute;
    * the constant's error changes ``exp(-|d|)`` by at most
      ``exp(-|d|) * (2**(c|d|) - 1) <= c*ln2*|d|*exp(-|d|/2) <= 2*c*ln2/e``,
      so ``e_i = e_exact*(1 + eps_i) + eta_i`` with ``|eps_i| <= 2**h - 1 + 3*2**-(EXP_FRAC+1)``
      and ``|eta_i| <= 2*c*ln2/e + eta``;
    * ``S >= 1`` (the maximum is exactly 1.0), so each ratio ``e_i/S`` moves by at
      most ``2*eps/(1-eps) + (1 + classes)*eta_i``; the division adds half an LSB.
    """
    c = abs(LOG2E_Q / 2 ** LOG2E_FRAC - math.log2(math.e))
    eps = (2.0 ** 2.0 ** -(frac + 1) - 1) + 3 * 2.0 ** -(EXP_FRAC + 1)
    eta = 2 * c * math.log(2) / math.e + 2.0 ** -(EXP_FRAC + 1)
    return 2 * eps / (1 - eps) + (1 + classes) * eta + 2.0 ** -(frac + 1)
