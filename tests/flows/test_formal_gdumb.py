"""GDumb's bookkeeping proved on the control unit's insertion states, with the class counts
in registers (lane array) and in the serial datapath's memory (tinycl_hdl.flows.formal_gdumb)."""

import dataclasses

import pytest

from tinycl_hdl.flows.formal_gdumb import COVER_DEPTH, GDUMB_CONFIG, GDUMB_SHAPES, prove_gdumb

DATAPATHS = list(COVER_DEPTH)


@pytest.mark.parametrize("shape", GDUMB_SHAPES, ids=lambda c: f"{c.datapath}-{c.slots}slots-{c.classes}classes")
def test_insertion_keeps_the_counts_and_the_memories(tmp_path, shape):
    passed, summary = prove_gdumb(tmp_path, shape)
    assert passed, summary


@pytest.mark.parametrize("datapath", DATAPATHS)
def test_the_covers_reach_a_full_memory_two_evictions_and_a_refusal(tmp_path, datapath):
    shape = dataclasses.replace(GDUMB_CONFIG, datapath=datapath)
    passed, summary = prove_gdumb(tmp_path, shape, mode="cover", depth=COVER_DEPTH[datapath])
    assert passed, summary
    assert summary.count("reached cover statement") == 3, summary


@pytest.mark.parametrize("datapath", DATAPATHS)
def test_an_eviction_that_forgets_the_evicted_class_is_caught(tmp_path, datapath):
    # From reset: the bounded check finds the wrong count after the first eviction (step 81
    # with registered counts, 72 with counts in memory).
    shape = dataclasses.replace(GDUMB_CONFIG, datapath=datapath)
    passed, summary = prove_gdumb(tmp_path, shape, mode="bmc", depth=COVER_DEPTH[datapath] - 20, broken=True)
    assert not passed and "failed assertion" in summary, summary
