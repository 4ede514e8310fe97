"""The UART host link's frames (8N1, little-endian fields).

======================================  =====================================
host sends                              device answers
======================================  =====================================
``0x57 'W'``, address (4), data (4)     status (1)
``0x52 'R'``, address (4)               status (1), data (4)
======================================  =====================================

The status byte is the AXI4-Lite response.  A frame left incomplete for
:data:`TIMEOUT_BITS` bit periods is abandoned.  The bridge RTL
(:class:`~tinycl_hdl.rtl.uart.UartBridge`) and the host transports
(:mod:`tinycl_hdl.host.uart`) share these constants.
"""

__all__ = ["FRAME_WRITE", "FRAME_READ", "TIMEOUT_BITS", "STATUS_NAMES"]

FRAME_WRITE, FRAME_READ = 0x57, 0x52
TIMEOUT_BITS = 64
STATUS_NAMES = {0: "OKAY", 1: "EXOKAY", 2: "SLVERR", 3: "DECERR"}
