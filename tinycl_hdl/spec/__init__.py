"""The specification layer: what the accelerator computes, independent of how.

The configuration (:mod:`.config`) and its named instances (:mod:`.catalogue`), the
fixed-point format (:mod:`.fixedpoint`), the loss gradient's softmax tables
(:mod:`.softmax`), the LFSR and the initial weights (:mod:`.lfsr`, :mod:`.initial`),
the window's visit order (:mod:`.window`), the register map (:mod:`.regmap`) and the
UART frames (:mod:`.framing`).  Nothing here imports another layer of the project:
the software model and the RTL both build on it.
"""
