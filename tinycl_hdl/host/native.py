"""The transport to a natively clocked Verilator model (:mod:`tinycl_hdl.flows.native`).

The harness executable speaks a small binary protocol on its standard input and output
(documented in ``tinycl_hdl/flows/native_harness.cpp``).  Each coroutine below is one
request and its reply; the model runs only while a request is served, so the host's
Python time costs no simulated cycles.
"""

from __future__ import annotations

import struct
import subprocess

from .driver import BusError

__all__ = ["NativeTransport"]

_RESP = {0: "OKAY", 1: "EXOKAY", 2: "SLVERR", 3: "DECERR"}


class NativeTransport:
    """Register access to a harness process.

    Parameters
    ----------
    executable : path
        The harness built by :func:`~tinycl_hdl.flows.native.build_native`.
    waves : path or None
        FST file to write (the harness must be built with waveforms).
    coverage : path or None
        Coverage file that the harness writes as it exits (the harness must be built with
        coverage).
    """

    def __init__(self, executable, waves=None, coverage=None):
        args = [str(executable)] + (["--fst", str(waves)] if waves is not None else [])
        args += ["--coverage", str(coverage)] if coverage is not None else []
        self._process = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
        self._in, self._out = self._process.stdin, self._process.stdout

    def _exchange(self, request: bytes, reply_size: int) -> bytes:
        self._in.write(request)
        reply = b""
        while len(reply) < reply_size:
            chunk = self._out.read(reply_size - len(reply))
            if not chunk:
                code = self._process.wait()
                raise RuntimeError(f"the native model exited ({code})")
            reply += chunk
        return reply

    def write_raw(self, addr: int, value: int) -> int:
        """Write; returns the AXI response (0 OKAY, 2 SLVERR)."""
        return self._exchange(struct.pack("<cII", b"W", addr, value & 0xFFFFFFFF), 1)[0]

    def read_raw(self, addr: int) -> tuple:
        """Read; returns ``(response, data)``."""
        return struct.unpack("<BI", self._exchange(struct.pack("<cI", b"R", addr), 5))

    def write_now(self, addr: int, value: int) -> None:
        resp = self.write_raw(addr, value)
        if resp:
            raise BusError(f"write of 0x{value & 0xFFFFFFFF:X} to 0x{addr:X} answered {_RESP[resp]}")

    def read_now(self, addr: int) -> int:
        resp, data = self.read_raw(addr)
        if resp:
            raise BusError(f"read of 0x{addr:X} answered {_RESP[resp]}")
        return data

    async def read(self, addr: int) -> int:
        return self.read_now(addr)

    async def write(self, addr: int, value: int) -> None:
        self.write_now(addr, value)

    async def write_many(self, writes) -> None:
        """Every ``(addr, value)`` in one exchange; :class:`BusError` if any was refused."""
        payload = b"".join(struct.pack("<II", addr, value & 0xFFFFFFFF) for addr, value in writes)
        resp = self._exchange(struct.pack("<cI", b"M", len(writes)) + payload, 1)[0]
        if resp:
            raise BusError(f"a write of {len(writes)} answered {_RESP[resp]}")

    async def wait_interrupt(self, max_cycles: int) -> bool:
        """Clock the model until ``irq`` is high, at most ``max_cycles`` cycles."""
        irq, _ = struct.unpack("<BQ", self._exchange(struct.pack("<cQ", b"I", max_cycles), 9))
        return bool(irq)

    def cycles(self) -> int:
        """Clock cycles simulated since reset."""
        return struct.unpack("<Q", self._exchange(b"C", 8))[0]

    def zero_coverage(self) -> None:
        """Zero the model's coverage counts: from here they count one window of the run."""
        if not self._exchange(b"Z", 1)[0]:
            raise RuntimeError("the native model was built without coverage")

    def close(self) -> None:
        if self._process.poll() is None:
            try:
                self._in.write(b"Q")
                self._in.close()
            except BrokenPipeError:
                pass
            self._process.wait(timeout=60)
