"""GDumb's bookkeeping proved on the control unit's insertion states (tinycl_hdl.flows.formal_gdumb)."""

import pytest

from tinycl_hdl.flows.formal_gdumb import GDUMB_SHAPES, prove_gdumb


@pytest.mark.parametrize("shape", GDUMB_SHAPES, ids=lambda c: f"{c.slots}slots-{c.classes}classes")
def test_insertion_keeps_the_counts_and_the_memories(tmp_path, shape):
    passed, summary = prove_gdumb(tmp_path, shape)
    assert passed, summary


def test_the_covers_reach_a_full_memory_two_evictions_and_a_refusal(tmp_path):
    passed, summary = prove_gdumb(tmp_path, mode="cover", depth=90)
    assert passed, summary
    assert summary.count("reached cover statement") == 3, summary


def test_an_eviction_that_forgets_the_evicted_class_is_caught(tmp_path):
    # From reset: the bounded check finds the wrong count after an eviction.
    passed, summary = prove_gdumb(tmp_path, mode="bmc", depth=70, broken=True)
    assert not passed and "failed assertion" in summary, summary
