"""The host port's request pipeline, shared by both datapaths.

:class:`HostPort` decodes each AXI4-Lite request over two registered cycles and
runs the host FSM; the control unit (:class:`~tinycl_hdl.rtl.controller.Controller`)
serves the writes, the datapath the reads of its own memories.
"""

from amaranth.hdl import Cat, Const, Mux, Signal

from .arith import index

__all__ = ["HostPort"]


class HostPort:
    """The host port's request handling.

    Every request is decoded over two registered cycles before it acts, so that no address
    comparison, index product or read multiplexer shares a cycle with the response logic.
    The AXI adapter holds the request until answered and leaves at least an idle cycle
    between requests, so ``req_valid`` registered once (``decoding``) and twice
    (``decoded``) marks the first and second cycles of the same request; ``decoded`` outlives
    the request by one cycle, hence the ``req_valid`` beside it.

    Attributes
    ----------
    addr, value : the request's address and write data
    rdata, error_resp, done_resp : the response (driven by the caller's states)
    readable : dict, the registers read from signals, by name (the caller adds its own)
    stage, lab, cw, dwf, smp : dict, address fields of the staging, label, weight and sample windows
        (``smp`` is ``None`` when the map has no ``SAMPLES``)
    to_reg : dict, decoded writable registers and value checks (:meth:`~tinycl_hdl.rtl.controller.Controller.decode_writes`)
    to_stage, to_labels, to_cw, to_dw, to_samples : the request falls in a window (cycle 1)
    mem_kind, mem_rdata : the memory a ``MEM_READ`` reads, and the word it answers
    """

    def __init__(self, m, common, axi, samples):
        s, rm = common, common.regmap
        self._common, self._axi, self._samples = common, axi, samples
        self.addr, self.value = axi.req_addr, axi.req_wdata
        self.rdata, self.error_resp, self.done_resp = Signal(32, name="rdata"), Signal(name="error_resp"), \
            Signal(name="done_resp")
        m.d.comb += [axi.resp_rdata.eq(self.rdata), axi.resp_error.eq(self.error_resp),
                     axi.resp_ready.eq(self.done_resp)]
        self.mem_kind, self.mem_rdata = Signal(2, name="mem_kind"), Signal(32, name="mem_rdata")
        # Read data is ``mem_rdata`` unless a state answers another value.
        m.d.comb += self.rdata.eq(self.mem_rdata)
        self.readable = {
            "COMMAND": s.command, "STATUS": Cat(s.host_busy, Const(0, 3), s.command, s.kept), "ERROR": s.error,
            "LR_SHIFT": s.lr_shift, "EPOCHS": s.epochs, "SEED": s.seed, "LABEL": s.label_reg, "RESULT": Mux(s.result_none, Const(0xFFFFFFFF, 32), s.result),
            "MEM_SIZE": s.size, "IRQ_ENABLE": s.irq_enable, "IRQ_STATUS": s.irq_status,
        }
        self.stage, self.lab = s.window_fields(self.addr, rm.staging), s.window_fields(self.addr, rm.labels)
        self.cw, self.dwf = s.window_fields(self.addr, rm.conv_w), s.window_fields(self.addr, rm.dense_w)
        self.stage_regs = (Signal(index(s.cfg.in_c), name="stage_c"), Signal.like(samples.px_row, name="stage_row"),
                           Signal.like(samples.px_col, name="stage_col"), Signal(32, name="stage_data"))
        self.decoding, self.decoded = Signal(name="decoding"), Signal(name="decoded")
        m.d.sync += [self.decoding.eq(axi.req_valid), self.decoded.eq(self.decoding & axi.req_valid),
                     s.host_busy.eq(s.busy)]
        self.to_reg = s.decode_writes(m, self.addr, self.value)
        self.to_stage, self.to_labels, self.to_cw, self.to_dw, self.to_samples = \
            (Signal(name=f"to_{n}") for n in ("stage", "labels", "cw", "dw", "samples"))
        m.d.sync += [self.to_stage.eq(s.in_window(self.addr, rm.staging, self.stage)),
                     self.to_labels.eq(s.in_window(self.addr, rm.labels, self.lab)),
                     self.to_cw.eq(s.in_window(self.addr, rm.conv_w, self.cw)),
                     self.to_dw.eq(s.in_window(self.addr, rm.dense_w, self.dwf))]
        self.smp = None
        if rm.samples is not None:
            self.smp = s.window_fields(self.addr, rm.samples)
            m.d.sync += self.to_samples.eq(s.in_window(self.addr, rm.samples, self.smp))

    def window_reads(self, m, labels, conv_w, dense_w, conv_extra=(), dense_extra=()):
        """The rest of a read request's ``If``/``Elif`` chain: the label and weight windows,
        read while idle through ``MEM_ADDR`` into ``MEM_READ`` (``mem_kind`` 0, 1, 2), else
        ``SLVERR``.  ``conv_w`` and ``dense_w`` are ``(memory, word address)`` pairs of
        registered addresses; the ``*_extra`` statements run with the decision."""
        busy = self._common.host_busy
        self._window_reads = [[(labels, self.lab["slot"][0])], conv_w, dense_w]
        for kind, flag, extra in ((0, self.to_labels, ()), (1, self.to_cw, conv_extra), (2, self.to_dw, dense_extra)):
            with m.Elif(~busy & flag):
                m.d.sync += [self.mem_kind.eq(kind), *extra]
                m.next = "MEM_ADDR"
        with m.Else():
            m.d.comb += [self.done_resp.eq(1), self.error_resp.eq(1)]

    def _address_state(self, m):
        """``MEM_ADDR``: the window read itself, a cycle after the decision.  Its enable and
        address come from the state and registers alone: a weight memory is many block RAMs
        spread over the device, and the request decode stays off the nets that reach them."""
        with m.State("MEM_ADDR"):
            for kind, reads in enumerate(self._window_reads):
                with m.If(self.mem_kind == kind):
                    for mem, word in reads:
                        m.d.comb += [mem.r_en.eq(1), mem.r_addr.eq(word)]
            m.next = "MEM_READ"

    def states(self, m, lfsr, read_request, extra_states, datapath_writes=None):
        """The host port's FSM: ``IDLE`` waits for the decode, serves writes itself (and
        through ``datapath_writes(m)`` the datapath's) and reads through ``read_request(m)``;
        ``STAGE``, the caller's ``extra_states(m)``, ``MEM_ADDR`` (the window reads of
        :meth:`window_reads`) and ``MEM_RESPOND`` (answers ``mem_rdata``)."""
        with m.FSM(name="host"):
            with m.State("IDLE"):
                with m.If(~(self.decoded & self._axi.req_valid)):
                    pass                      # wait for the registered decode
                with m.Elif(self._axi.req_write):
                    self._common.write_request(m, self._axi, lfsr, self.to_reg, self.to_stage, self.stage,
                                               self.stage_regs, self.done_resp, self.error_resp,
                                               datapath_writes)
                with m.Else():
                    read_request(m)
            self._common.stage_state(m, self._samples, self.stage_regs, self.done_resp)
            extra_states(m)
            self._address_state(m)        # after IDLE: the read request named the reads
            with m.State("MEM_RESPOND"):
                m.d.comb += [self.done_resp.eq(1), self.rdata.eq(self.mem_rdata)]
                m.next = "IDLE"
