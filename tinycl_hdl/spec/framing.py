"""The UART host link's frames (8N1, little-endian fields, a CRC at the end of each).

======================================================  ==============================================
host sends                                              device answers
======================================================  ==============================================
``0x57 'W'``, address (4), data (4), CRC (2)            status (1), CRC (2)
``0x52 'R'``, address (4), CRC (2)                      status (1), data (4), CRC (2)
======================================================  ==============================================

The CRC is :data:`FRAME_CRC` (CRC-16/KERMIT: polynomial 0x1021, reflected, zero initial value)
of the frame's bytes before it, sent little-endian.  It is reflected so that the bridge computes
it bit-serially in the order a UART sends bits (least significant first), and it detects every
error burst of up to 16 bits.  The status byte is the AXI4-Lite response, or
:data:`STATUS_BADCRC` for a frame whose CRC fails: that frame is not executed.  The reply's
length follows the frame's first byte, so a read answers five bytes and its CRC even when
refused.  Another first byte is dropped, and a frame left incomplete for :data:`TIMEOUT_BITS`
bit periods is abandoned.  The bridge RTL (:class:`~tinycl_hdl.rtl.uart.UartBridge`) and the
host transports (:mod:`tinycl_hdl.host.uart`) share these definitions.
"""

from amaranth.lib.crc import catalog

__all__ = ["FRAME_WRITE", "FRAME_READ", "TIMEOUT_BITS", "STATUS_OKAY", "STATUS_SLVERR", "STATUS_BADCRC",
           "STATUS_NAMES", "FRAME_CRC", "CRC_BYTES", "frame_crc", "seal", "check"]

FRAME_WRITE, FRAME_READ = 0x57, 0x52
TIMEOUT_BITS = 64
STATUS_OKAY, STATUS_SLVERR, STATUS_BADCRC = 0, 2, 4
STATUS_NAMES = {0: "OKAY", 1: "EXOKAY", 2: "SLVERR", 3: "DECERR", STATUS_BADCRC: "BADCRC"}

#: The frames' CRC (Amaranth's catalogue entry, so the bridge's hardware CRC and the host's
#: software one are one definition).
FRAME_CRC = catalog.CRC16_KERMIT
CRC_BYTES = FRAME_CRC.crc_width // 8


def frame_crc(data: bytes) -> int:
    """The CRC of ``data`` (bytes on the line, each least significant bit first)."""
    return FRAME_CRC(data_width=8).compute(data)


def seal(data: bytes) -> bytes:
    """``data`` followed by its CRC, as sent on the line."""
    return bytes(data) + frame_crc(data).to_bytes(CRC_BYTES, "little")


def check(data: bytes) -> bool:
    """Whether ``data`` ends in the CRC of the bytes before it."""
    return len(data) > CRC_BYTES and seal(data[:-CRC_BYTES]) == bytes(data)
