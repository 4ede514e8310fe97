import cocotb, numpy as np
from tb_tinycl import start
from tinycl_hdl.spec.regmap import Command

@cocotb.test()
async def dbg(dut):
    tb = await start(dut)
    host = tb.host
    labels = [1,0,1,1,1,0,1,1,0,1,1,0]
    x = np.zeros((8,8,1), np.uint8)
    for l in labels:
        await host.insert(x, l)
    r = await host.insert(x, 3)
    dut._log.warning("RESULT %s counts %s", r, [await host.read(f"CLASS_COUNT{c}") for c in range(4)])
