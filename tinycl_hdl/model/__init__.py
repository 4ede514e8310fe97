"""The software model layer: the golden model and what runs on it.

The bit-exact fixed-point model (:mod:`.golden`), the float reference
(:mod:`.reference`), the software accelerator with the chip's command set
(:mod:`.accelerator`), the GDumb protocol (:mod:`.protocol`) and its data
(:mod:`.data`), test vectors (:mod:`.vectors`) and the analytic performance model
(:mod:`.perf`).  It imports only the specification layer.
"""

from .accelerator import SoftwareAccelerator

__all__ = ["SoftwareAccelerator"]
