"""The TinyCL accelerator top: the control unit, a datapath, the shared blocks, the AXI4-Lite port.

Per training sample the control unit runs five phases, each computed by the
datapath except the loss:

``CONV_FWD``  the conv layer over the snake window, ReLU, the activation writes;
``DENSE_FWD`` the logits;
``LOSS``      :class:`~tinycl_hdl.rtl.loss.LossGradient`: softmax cross-entropy's gradient;
``DENSE_BWD`` the input gradient through ReLU and the dense weight and bias updates;
``CONV_BWD``  the conv weight gradient over the window, then the conv weight and bias updates.

``datapath="array"`` builds the lane array (:class:`~tinycl_hdl.rtl.lane_array.LaneArray`),
``"serial"`` the one-lane :class:`~tinycl_hdl.rtl.serial.SerialDatapath`; the ports, the
register map and every result are the same.
"""

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import Out

from ..spec.config import TinyCLConfig
from ..spec.regmap import RegisterMap
from .axi import AxiLiteSlave, axi_lite_members, forward_axi_lite
from .controller import Controller, shared_blocks
from .hostport import HostPort
from .lane_array import LaneArray
from .serial import SerialDatapath

__all__ = ["TinyCL", "memories", "memory_shapes", "dual_port_memories"]

DATAPATHS = {"array": LaneArray, "serial": SerialDatapath}


class TinyCL(wiring.Component):
    """The accelerator top level (module ``tinycl``).

    Parameters
    ----------
    cfg : TinyCLConfig
    blackbox : bool
        Instantiate the memories as SRAM macros (see :class:`~tinycl_hdl.rtl.memory.Sram`).

    Attributes
    ----------
    s_axil_* : AXI4-Lite slave port (register map: :class:`~tinycl_hdl.spec.regmap.RegisterMap`).
    busy : Out(1)
        A command is running (also STATUS bit 0).
    irq : Out(1)
        Interrupt, a level: ``IRQ_STATUS & IRQ_ENABLE`` (bit 0 each).  It rises in the cycle
        ``busy`` falls at the end of ``INSERT``, ``TRAIN``, ``TRAIN_KEEP`` or ``INFER``, and
        stays up until the host writes 1 to ``IRQ_STATUS``.
    """

    def __init__(self, cfg: TinyCLConfig, *, blackbox: bool = False):
        if not isinstance(cfg, TinyCLConfig):
            raise TypeError(f"cfg must be a TinyCLConfig, not {cfg!r}")
        self._cfg, self._blackbox = cfg, blackbox
        self._regmap = RegisterMap(cfg)
        members = axi_lite_members(self._regmap.address_width)
        members["busy"] = Out(1)
        members["irq"] = Out(1)
        super().__init__(members)

    @property
    def regmap(self) -> RegisterMap:
        return self._regmap

    def datapath(self):
        """A fresh datapath of the configured kind."""
        return DATAPATHS[self._cfg.datapath](self._cfg, blackbox=self._blackbox)

    def memories(self) -> dict:
        """``{instance path below the top: MemoryShape}`` of every memory, as the blocks report them."""
        return memories(self._cfg)

    def macros(self) -> list:
        """:class:`~tinycl_hdl.rtl.memory.MemoryShape` of every memory instance."""
        return list(self.memories().values())

    def elaborate(self, platform):
        m = Module()
        cfg, regmap = self._cfg, self._regmap
        m.submodules.axi = axi = AxiLiteSlave(regmap.address_width)
        forward_axi_lite(m, self, axi, regmap.address_width)
        dp = self.datapath()
        blocks = shared_blocks(m, cfg, dp, blackbox=self._blackbox)
        dp.build_memories(m, blocks)
        ctl = Controller(cfg, regmap, blocks, dp, dp.ctr_limit, blocks.samples.addr_width,
                         count_memory=dp.count_memory())
        m.d.comb += [self.busy.eq(ctl.busy), blocks.lfsr.seed_in.eq(ctl.seed),
                     self.irq.eq(ctl.irq_status & ctl.irq_enable)]
        dp.build(m, ctl)
        control = ctl.fsm(m)
        # The control unit's state names by encoding, for coverage (tinycl_hdl.flows.coverage).
        self.control_states = dict(control.encoding)
        dp.after_fsm(m, ctl, control)
        host = HostPort(m, ctl, axi, blocks.samples)
        read_request, memory_states = dp.host_port(m, ctl, host)
        host.states(m, blocks.lfsr, read_request, memory_states, dp.host_writes(m, ctl, host))
        return m


def memories(cfg: TinyCLConfig) -> dict:
    """``{instance path below the top: MemoryShape}`` of the top for ``cfg`` (:meth:`TinyCL.memories`)."""
    return DATAPATHS[cfg.datapath](cfg).memories()


def memory_shapes(cfg: TinyCLConfig) -> list:
    """:class:`~tinycl_hdl.rtl.memory.MemoryShape` of every memory instance of the top."""
    return list(memories(cfg).values())


def dual_port_memories(cfg: TinyCLConfig) -> list:
    """Instance paths (below the top) of the memories with a read and a write port."""
    return [path for path, shape in memories(cfg).items() if not shape.single_port]
