"""cocotb entry points of the ``tinycl verify``, ``report`` and ``train --backend rtl`` commands.

Each test reads its options from ``TINYCL_TB_PARAMS`` and writes its findings
as JSON to ``params["result_file"]``.
"""

import json

import cocotb
from cocotb.utils import get_sim_time

from tb_tinycl import bit_exact_run, start
from tinycl_hdl.host.session import protocol_run, report_run


def simulated(tb) -> dict:
    """The clock cycles simulated so far."""
    return {"simulated_cycles": int(get_sim_time("ns") // tb.period_ns)}


def write_result(tb, data):
    with open(tb.params["result_file"], "w") as file:
        json.dump(data, file, indent=2)


@cocotb.test()
async def verify(dut):
    """INSERT (with eviction), TRAIN, INFER and TRAIN_KEEP, every result against the golden
    model (:func:`tb_tinycl.bit_exact_run`)."""
    tb = await start(dut)
    n = tb.params["samples"]
    result = await bit_exact_run(tb, n, tb.params.get("epochs", 1), max(1, n // 2))
    write_result(tb, dict(result, **simulated(tb)))


@cocotb.test()
async def report(dut):
    """Cycles per training sample by phase, from the hardware counters."""
    tb = await start(dut)
    result = await report_run(tb.host, tb.params.get("samples", 4), tb.sample)
    write_result(tb, dict(result, **simulated(tb)))


@cocotb.test()
async def protocol(dut):
    """The class-incremental protocol of ``tinycl train`` on the RTL."""
    tb = await start(dut)
    tb.host.max_polls = None
    result = await protocol_run(tb.host, tb.params, log=dut._log.info)
    write_result(tb, dict(result, **simulated(tb)))
