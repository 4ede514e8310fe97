"""The memories each block reports are the memories the elaborated top holds."""

import dataclasses

import pytest
from amaranth.hdl import Fragment

from tinycl_hdl.rtl.memory import SampleMemory, Sram
from tinycl_hdl.rtl.top import TinyCL, dual_port_memories
from tinycl_hdl.spec.catalogue import SERIAL_TOPS, TOPS


def elaborated_memories(top) -> dict:
    """``{path: MemoryShape}`` of every :class:`Sram` found by elaborating ``top``."""
    found = {}

    def walk(fragment, path):
        for sub, name, _ in fragment.subfragments:
            sub_path = f"{path}.{name}" if path else name
            origin = next((o for o in sub.origins or () if isinstance(o, Sram)), None)
            if origin is not None:
                found[sub_path] = origin.shape
            else:
                walk(sub, sub_path)
    walk(Fragment.get(top, None), "")
    return found


@pytest.mark.parametrize("name", ["digits-small", "5x9x3-q3.12", "digits-small-serial", "7x5x2-serial"])
def test_reported_memories_are_the_elaborated_ones(name):
    cfg = {**TOPS, **SERIAL_TOPS}[name]
    top = TinyCL(cfg)
    assert top.memories() == elaborated_memories(TinyCL(cfg))
    assert set(dual_port_memories(cfg)) == {p for p, s in top.memories().items() if not s.single_port}
    assert all(path.startswith("samples.") for path, shape in top.memories().items() if shape.single_port)


def test_a_memory_left_out_of_the_report_is_seen():
    cfg = TOPS["digits-small"]
    top = TinyCL(cfg)
    reported = dict(top.memories())
    reported.pop("labels")
    assert reported != elaborated_memories(TinyCL(cfg))


@pytest.mark.parametrize("latency", [0, 2, 4, "3"])
def test_sample_memory_refuses_a_read_latency_it_cannot_build(latency):
    with pytest.raises(ValueError, match=r"read_latency must be 1 or 3, not"):
        SampleMemory(TOPS["digits-small"], read_latency=latency)


@pytest.mark.parametrize("latency", [1, 3])
def test_sample_memory_reports_the_read_latency_it_builds(latency):
    assert SampleMemory(TOPS["digits-small"], read_latency=latency).read_latency == latency
