"""The lane array's cycle schedule: when each engine reads, issues and writes.

Every engine of the lane array (``tinycl_hdl.rtl.conv_forward`` and its siblings) runs a
fixed sequence: from its start, each cycle's reads, operand sets and (a processing-unit
latency later) writes are known from the configuration alone.  This module writes that
sequence down, and from it the earliest cycle each engine may start after the one before
without reading a word that the one before has not yet written:

* the dense forward pass after the conv forward pass (the activations);
* the conv backward pass during the dense backward pass (the input gradients), its window
  filling while the dense backward pass issues its last operand sets;
* the next sample's conv forward pass during the conv backward pass (the conv weights and
  biases), its window filling while the last updates are issued.

The RTL starts the engines at these offsets (:class:`ArraySchedule`), and the performance
model predicts the cycles per sample from the same numbers
(:func:`tinycl_hdl.model.perf.cycles_per_sample`).  ``tests/rtl`` checks both against the
RTL: its counters, and the result of every training step.

Times are cycles.  A write made by an operand set issued in cycle ``t`` lands at the end of
cycle ``t + UNIT_LATENCY`` and is read by reads from cycle ``t + UNIT_LATENCY + 1`` on
(a memory's read returns the old word in the cycle of a write).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from .config import TinyCLConfig
from .window import visit_order

__all__ = ["UNIT_LATENCY", "WINDOW_LATENCY", "LOGIT_LATENCY", "DIVIDER_STEPS", "window_fetches", "window_outputs",
           "divider_stages", "loss_cycles", "loss_ready", "ArraySchedule"]

#: Cycles from an operand set to its result at the processing units' outputs
#: (``tinycl_hdl.rtl.mac.ProcessingUnit.latency``).
UNIT_LATENCY = 7
#: Cycles from a window fetch to its window on the outputs (``SnakeWindow.latency``, pipelined).
WINDOW_LATENCY = 6
#: Cycles from the units' dot outputs to the logit's write (sum and round, saturate, write).
LOGIT_LATENCY = 3
#: A write issued in cycle t is read from cycle t + VISIBLE on.
VISIBLE = UNIT_LATENCY + 1
#: Quotient bits each stage of the loss unit's pipelined divider makes.
DIVIDER_STEPS = 2
#: Register stages of the loss unit's exp pipeline.
EXP_LATENCY = 5


def divider_stages(cfg: TinyCLConfig) -> int:
    """Stages of the loss unit's pipelined divider: ``frac_bits + 1`` quotient bits,
    :data:`DIVIDER_STEPS` a stage."""
    return -(-(cfg.frac_bits + 1) // DIVIDER_STEPS)


def loss_cycles(cfg: TinyCLConfig, pipelined: bool) -> int:
    """Cycles from the loss unit's ``start`` to its ``done`` (neither counted): with the
    pipelined divider two reads of the logits, the last one's exponential and division;
    with the sequential one, every exponential, then per class a start and its quotient bits."""
    n, qbits = cfg.classes, cfg.frac_bits + 1
    if pipelined:
        return 2 * n + EXP_LATENCY + divider_stages(cfg) - 1
    return n + 1 + EXP_LATENCY + n * (qbits + 2) - 2


def loss_ready(cfg: TinyCLConfig, pipelined: bool) -> int:
    """Cycles from the loss unit's ``start`` to its ``delta_ready``: ``delta[0]`` written and
    the second read of the logits over (with the sequential divider, ``done``)."""
    n = cfg.classes
    if pipelined:
        return n + max(EXP_LATENCY + 1 + divider_stages(cfg), n)
    return loss_cycles(cfg, False) + 1


def window_fetches(cfg: TinyCLConfig, channels: int) -> list:
    """Fetch cycle (1 = the cycle after ``start``) of every window of a sweep of ``channels``
    channels, in output order, with its ``(pos, channel index)``.

    The first position, and in raster order the first of every row, fills ``kernel`` columns
    per channel, the channel's window coming out with its last; every other position takes
    one fetch per channel."""
    out, fetch = [], 0
    for y, x in visit_order(cfg):
        refill = x == 0 if cfg.window == "raster" else (y == 0 and x == 0)
        for c in range(channels):
            fetch += cfg.kernel if refill else 1
            out.append((fetch, y * cfg.out_w + x, c))
    return out


def window_outputs(cfg: TinyCLConfig, channels: int) -> tuple:
    """``(outputs, next_start)``: the cycle (from ``start``) each window of a sweep is on the
    window's outputs, with its ``(pos, channel index)``; and the cycle a chained sweep starts
    (the first in which the window no longer fetches)."""
    fetches = window_fetches(cfg, channels)
    return [(f + WINDOW_LATENCY, pos, c) for f, pos, c in fetches], fetches[-1][0] + 1


@dataclass(frozen=True)
class _Engine:
    """One engine's run, in cycles from its start: ``issues`` (cycle, tag) and ``reads``
    (cycle, memory, word), and the cycle of its last operand set."""
    issues: list
    reads: list

    @property
    def last_issue(self) -> int:
        return max(t for t, _ in self.issues)

    def writes(self, memory: str):
        """``{word: cycle of the last operand set that writes it}`` for ``memory``."""
        out = {}
        for t, tag in self.issues:
            if tag and tag[0] == memory:
                out[tag[1]] = max(out.get(tag[1], t), t)
        return out

    def first_reads(self, memory: str):
        """``{word: cycle of its first read}`` of ``memory``."""
        out = {}
        for t, mem, word in self.reads:
            if mem == memory and word not in out:
                out[word] = t
        return out


class ArraySchedule:
    """The lane array's schedule for ``cfg`` (``datapath = "array"``).

    Attributes
    ----------
    cf_to_df : int
        Cycles from the conv forward pass's last operand set to the dense forward pass's start.
    db_to_cb : int
        Cycles from the dense backward pass's start to the conv backward pass's start.
    cb_to_cf : int
        Cycles from the conv backward pass's start to the next sample's conv forward start
        (when that sample is fetched in time).
    loss_to_db : int
        Cycles from the loss unit's start to the dense backward pass's start.
    """

    def __init__(self, cfg: TinyCLConfig):
        if not isinstance(cfg, TinyCLConfig) or cfg.datapath != "array":
            raise ValueError(f"cfg must be a TinyCLConfig of the lane array, not {cfg!r}")
        self.cfg = cfg
        self.lanes = cfg.kernel ** 2
        self.positions = cfg.out_h * cfg.out_w
        self.plane_words = -(-self.positions // self.lanes)
        self.groups = cfg.filters // cfg.n_pu
        self.chunks = self.groups * self.plane_words

    # -- the engines, from their starts ----------------------------------------------------

    def _sweeps(self, sweeps):
        """Chained window sweeps: for each ``(group, first channel, channels)``, the windows
        with their times from the first start."""
        out, start = [], 0
        for group, first, channels in sweeps:
            windows, next_start = window_outputs(self.cfg, channels)
            out += [(start + t, group, pos, first + c) for t, pos, c in windows]
            start += next_start
        return out

    @cached_property
    def conv_forward(self) -> _Engine:
        """A sweep per group over every channel: conv weights read as a window comes out,
        the operand set a cycle later, the last channel's writing the activation."""
        C = self.cfg.in_c
        issues, reads = [], []
        for t, g, pos, c in self._sweeps([(g, 0, C) for g in range(self.groups)]):
            reads.append((t, "conv_w", g * C + c))
            reads.append((t + 1, "conv_b", g))
            chunk = g * self.plane_words + pos // self.lanes
            issues.append((t + 1, ("act", chunk) if c == C - 1 else None))
        return _Engine(issues, reads)

    @cached_property
    def dense_forward(self) -> _Engine:
        """Reads of (class, chunk) from the cycle after its start, each issued a cycle later."""
        issues, reads = [], []
        for r in range(self.cfg.classes * self.chunks):
            o, chunk = divmod(r, self.chunks)
            reads.append((1 + r, "act", chunk))
            issues.append((2 + r, ("logit", o) if chunk == self.chunks - 1 else None))
        return _Engine(issues, reads)

    @cached_property
    def dense_backward(self) -> _Engine:
        """Per (chunk, class) pair ``q``: reads at ``1 + 2q``, ``OUTER`` at ``2 + 2q``, its
        ``UPDATE`` at ``3 + 2q`` (the class's last writes the chunk's input gradient)."""
        NC = self.cfg.classes
        issues, reads = [], []
        for q in range(NC * self.chunks):
            chunk, o = divmod(q, NC)
            reads.append((1 + 2 * q, "delta", o))
            issues.append((2 + 2 * q, None))
            issues.append((3 + 2 * q, ("grad", chunk) if o == NC - 1 else None))
        return _Engine(issues, reads)

    @cached_property
    def conv_backward(self) -> _Engine:
        """A single-channel sweep per (group, channel): the gradient word read as a window
        comes out, ``OUTER`` a cycle later, the ``UPDATE`` two cycles after the last window."""
        C = self.cfg.in_c
        issues, reads = [], []
        windows = self._sweeps([(g, c, 1) for g in range(self.groups) for c in range(C)])
        for n, (t, g, pos, c) in enumerate(windows):
            reads.append((t, "grad", g * self.plane_words + pos // self.lanes))
            issues.append((t + 1, None))
            last_of_sweep = n + 1 == len(windows) or (windows[n + 1][1], windows[n + 1][3]) != (g, c)
            if last_of_sweep:
                issues.append((t + 2, ("conv_w", g * C + c)))
                if c == 0:
                    issues.append((t + 2, ("conv_b", g)))
        return _Engine(issues, reads)

    @cached_property
    def conv_backward_window_free(self) -> int:
        """The first cycle (from the conv backward start) the window no longer fetches."""
        total = 0
        for _ in range(self.groups * self.cfg.in_c):
            total += window_outputs(self.cfg, 1)[1]
        return total

    # -- the loss unit ------------------------------------------------------------------------

    @cached_property
    def loss_to_db(self) -> int:
        """The pipelined loss unit's ``delta_ready`` after its start (:func:`loss_ready`)."""
        return loss_ready(self.cfg, True)

    # -- the gaps ---------------------------------------------------------------------------

    @staticmethod
    def _earliest(producer: _Engine, consumer: _Engine, memories, after_last_issue: int) -> int:
        """The earliest start of ``consumer``, in cycles after ``producer``'s start, such that its
        first operand set follows ``producer``'s last and every word of ``memories`` it reads is
        read after ``producer``'s write of it."""
        first_issue = min(t for t, _ in consumer.issues)
        start = producer.last_issue + after_last_issue - first_issue
        for memory in memories:
            reads = consumer.first_reads(memory)
            for word, t_write in producer.writes(memory).items():
                if word in reads:
                    start = max(start, t_write + VISIBLE - reads[word])
        return start

    @cached_property
    def cf_to_df(self) -> int:
        """At least 0: the control unit starts the dense forward pass in or after the cycle of the
        conv forward pass's last operand set."""
        earliest = self._earliest(self.conv_forward, self.dense_forward, ["act"], 1)
        return max(0, earliest - self.conv_forward.last_issue)

    @cached_property
    def db_to_cb(self) -> int:
        """At least 1: the control unit starts the conv backward pass from its ``DB_RUN`` state."""
        return max(1, self._earliest(self.dense_backward, self.conv_backward, ["grad"], 1))

    #: The control unit's states between the conv backward start and the next conv forward
    #: start: ``CB_RUN``, ``SAMPLE_NEXT``, ``CF_START``.
    CB_TO_CF_STATES = 3

    @cached_property
    def cb_to_cf(self) -> int:
        """After the window's last fetch of the conv backward pass, too."""
        earliest = self._earliest(self.conv_backward, self.conv_forward, ["conv_w", "conv_b"], 1)
        return max(earliest, self.conv_backward_window_free, self.CB_TO_CF_STATES)

    # -- a training step ----------------------------------------------------------------------

    #: Cycles from the dense backward start to the next sample's being fetched: the control
    #: unit's prefetch starts in the first cycle of the backward phase and takes four.
    PREFETCH = 5

    @cached_property
    def step(self) -> dict:
        """The starts of one training step's engines, from its conv forward start: ``{"df",
        "loss", "db", "cb", "next"}``, ``next`` the next sample's conv forward start when that
        sample is of the same epoch (the control unit has fetched it during this step), and
        ``end`` the cycle of the conv backward pass's last operand set."""
        df = self.conv_forward.last_issue + self.cf_to_df
        # The last logit is written, and the loss unit starts, LOGIT_LATENCY - 1 cycles after
        # the units' output of the dense forward pass's last operand set.
        loss = df + self.dense_forward.last_issue + UNIT_LATENCY + LOGIT_LATENCY - 1
        db = loss + self.loss_to_db
        cb = db + self.db_to_cb
        after_fetch = db + self.PREFETCH + 2          # the prefetch seen in CB_RUN, then SAMPLE_NEXT
        return {"df": df, "loss": loss, "db": db, "cb": cb, "next": max(cb + self.cb_to_cf, after_fetch),
                "end": cb + self.conv_backward.last_issue}

    @property
    def cycles_per_sample(self) -> int:
        """Cycles of a training step within an epoch (all but the epoch's last)."""
        return self.step["next"]

    #: The control unit's states from the first sample's fetch to its conv forward start
    #: (``SAMPLE_FETCH``, ``SAMPLE_SLOT``, ``SAMPLE_LABEL_READ``, ``SAMPLE_LABEL``).
    FIRST_FETCH = 4

    def epoch_phases(self, samples: int) -> dict:
        """Cycles the control unit counts in each phase (``tinycl_hdl.spec.regmap.Phase`` names)
        during one epoch of ``samples`` training steps, from the first sample's fetch to the
        last's ``SAMPLE_FETCH`` (the performance counters ``CYC_*`` of a ``TRAIN_KEEP`` of one
        epoch, but ``CYC_OTHER``)."""
        if samples < 1:
            raise ValueError(f"samples must be a positive integer, not {samples!r}")
        step = self.step
        counts = dict.fromkeys(("CONV_FWD", "DENSE_FWD", "LOSS", "DENSE_BWD", "CONV_BWD"), 0)
        counts["CONV_FWD"] = self.FIRST_FETCH
        for n in range(samples):
            last = n == samples - 1
            counts["CONV_FWD"] += step["df"] + 1
            counts["DENSE_FWD"] += step["loss"] - step["df"]
            counts["LOSS"] += step["db"] - step["loss"]
            counts["DENSE_BWD"] += step["cb"] - step["db"]
            if last:
                # CB_RUN waits for the last update; SAMPLE_NEXT and SAMPLE_FETCH count as CONV_FWD.
                counts["CONV_BWD"] += step["end"] - step["cb"] + 1
                counts["CONV_FWD"] += 1
            else:
                counts["CONV_BWD"] += step["next"] - step["cb"] - 1
        return counts
