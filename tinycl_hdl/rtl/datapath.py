"""What a datapath gives the control unit: the four phases it computes, and its memories.

The control unit (:class:`~tinycl_hdl.rtl.controller.Controller`) keeps the GDumb
memory, orders the epochs, sequences the phases, answers the host and counts;
a :class:`Datapath` computes.  Both datapaths, the lane array
(:class:`~tinycl_hdl.rtl.lane_array.LaneArray`) and the one-lane
:class:`~tinycl_hdl.rtl.serial.SerialDatapath`, implement this class.

A datapath adds its states to the control unit's FSM rather than running an FSM of
its own: a phase hands over to the next in the cycle its last operation issues, as
one FSM's transition does, where a handshake between two FSMs would add a cycle at
each of the five phase boundaries of every sample.  The hooks are called while the
control unit elaborates, in this order:

1. :meth:`build_memories`, :meth:`build` (operand issue and write-back);
2. inside the FSM: :meth:`reset_states`, the ``IDLE`` hooks (:meth:`on_start`,
   :meth:`on_train`, :meth:`on_infer`), :meth:`insert_finish_states`,
   :meth:`init_states`, :meth:`conv_forward`, :meth:`dense_forward`,
   :meth:`dense_backward`, :meth:`conv_backward`, and the statements
   :meth:`on_order`, :meth:`on_label`, :meth:`on_loss_done`, :meth:`count_sample`,
   :meth:`on_cancel`, :meth:`on_done`;
3. :meth:`after_fsm`, :meth:`host_port`, :meth:`host_writes`.

The state names are the FSM's: a phase's states start at ``CF_START`` (conv
forward, from ``SAMPLE_LABEL``), ``DF_*`` (dense forward, ending in
:meth:`~tinycl_hdl.rtl.controller.Controller.logits_ready`), ``DB_RUN`` (dense
backward, from ``LOSS_WAIT``) and ``CB_*`` (conv backward, ending in
``SAMPLE_NEXT``).
"""

from amaranth.hdl import Cat, Const

from ..spec.config import TinyCLConfig
from .arith import round_shift, saturate
from .memory import Sram

__all__ = ["Datapath", "pixel_data"]


def pixel_data(cfg: TinyCLConfig, pixel):
    """An 8-bit pixel ``p`` as the data value ``(p - pixel_offset) * 2**-8``
    (``FixedFormat.from_pixels``)."""
    if cfg.pixel_offset:
        # Nine signed bits hold p - offset; 128 needs no adder: it inverts the pixel's top bit.
        value = (Cat(pixel[:7], ~pixel[7]).as_signed() if cfg.pixel_offset == 128 else
                 (pixel - Const(cfg.pixel_offset, 8)))
    else:
        value = Cat(pixel, Const(0, 1)).as_signed()
    if cfg.frac_bits >= 8:
        # |p - offset| * 2**(frac - 8) is below 2**frac <= 2**(data_width - 1): it fits.
        return value.shift_left(cfg.frac_bits - 8)
    return saturate(round_shift(value, 8 - cfg.frac_bits), cfg.data_width)


class Datapath:
    """The computing half of an accelerator top (see the module documentation).

    Parameters
    ----------
    cfg : TinyCLConfig
    blackbox : bool
        Instantiate the memories as SRAM macros.

    Attributes
    ----------
    labels, order : Sram
        The GDumb memory's label of each slot and the epoch's sample order, which the
        control unit walks (made by :meth:`build_memories`).
    """

    #: LFSR steps per cycle (a weight draw takes ``32 / lfsr_steps_per_cycle`` cycles).
    lfsr_steps_per_cycle = 32
    #: Whether the snake window registers its address arithmetic.
    window_pipelined = True
    #: Whether the loss unit's divider takes a class every cycle (else one stage, reused).
    loss_pipelined = True
    #: Bits of the tag a window sweep carries to its windows.
    window_tag_width = 1
    #: The FSM's first state after reset (``None``: ``IDLE``).
    reset_state = None
    #: Where ``INS_FINISH`` goes on to.
    insert_next = "DONE"

    def __init__(self, cfg: TinyCLConfig, *, blackbox: bool = False):
        if not isinstance(cfg, TinyCLConfig):
            raise TypeError(f"cfg must be a TinyCLConfig, not {cfg!r}")
        self.cfg, self.blackbox = cfg, blackbox
        self.labels = self.order = None

    # -- what it is made of ----------------------------------------------------------------

    def memories(self) -> dict:
        """``{instance path: MemoryShape}`` of the datapath's memories and its blocks'."""
        raise NotImplementedError

    def own_memories(self) -> dict:
        """``{submodule name: MemoryShape}`` of the memories the datapath instantiates itself."""
        raise NotImplementedError

    def make_memories(self, m) -> dict:
        """Instantiate :meth:`own_memories` as submodules of ``m``; returns them by name."""
        mems = {}
        for name, shape in self.own_memories().items():
            mems[name] = m.submodules[name] = Sram.of(shape, blackbox=self.blackbox)
        self.labels, self.order = mems["labels"], mems["order"]
        return mems

    @property
    def ctr_limit(self) -> int:
        """The longest count the control unit's loop counter ``ctr`` makes for this datapath."""
        raise NotImplementedError

    @property
    def drain_cycles(self) -> int:
        """Cycles from an operation's issue until its result is written back."""
        raise NotImplementedError

    def count_memory(self):
        """``None`` (the class counts are registers), or ``(read, data)`` (see
        :class:`~tinycl_hdl.rtl.controller.Controller`)."""
        return None

    # -- elaboration hooks, in the order they run -------------------------------------------

    def build_memories(self, m, blocks):
        raise NotImplementedError

    def build(self, m, ctl):
        raise NotImplementedError

    def reset_states(self, m, ctl):
        """States before the first ``IDLE`` (for :attr:`reset_state`)."""

    def on_start(self, m, ctl):
        """Statements in the cycle any command starts."""

    def on_train(self, m, ctl):
        raise NotImplementedError

    def on_infer(self, m, ctl):
        raise NotImplementedError

    def insert_finish_states(self, m, ctl):
        """States between ``INS_FINISH`` and ``DONE`` (for :attr:`insert_next`)."""

    def init_states(self, m, ctl):
        raise NotImplementedError

    def on_order(self) -> list:
        return []

    def on_label(self) -> list:
        return []

    def conv_forward(self, m, ctl):
        raise NotImplementedError

    def dense_forward(self, m, ctl):
        raise NotImplementedError

    def on_loss_done(self, m, ctl):
        raise NotImplementedError

    def dense_backward(self, m, ctl):
        raise NotImplementedError

    def conv_backward(self, m, ctl):
        raise NotImplementedError

    def count_sample(self, m):
        raise NotImplementedError

    def on_cancel(self, m):
        raise NotImplementedError

    def on_done(self, m):
        raise NotImplementedError

    def after_fsm(self, m, ctl, control):
        """Logic that follows the FSM (writes that outlive a state)."""

    def host_port(self, m, ctl, host):
        """The register reads: returns ``(read_request, memory_states)`` for
        :meth:`~tinycl_hdl.rtl.hostport.HostPort.states`."""
        raise NotImplementedError

    def host_writes(self, m, ctl, host):
        """The datapath's writable registers and windows, after :meth:`host_port`: ``None``,
        or ``datapath_writes(m)`` for :meth:`~tinycl_hdl.rtl.hostport.HostPort.states`."""
        return None

