"""The hardware LFSR against the specification's draws (tinycl_hdl.flows.formal_lfsr)."""

from tinycl_hdl.flows.formal_lfsr import prove_lfsr


def test_the_multi_cycle_lfsr_draws_the_golden_sequence(tmp_path):
    """Four Galois steps a cycle (eight cycles a draw): proved by k-induction, covers reached.
    ``make formal`` proves the one-draw-a-cycle form too (minutes of solver time)."""
    for mode in ("prove", "cover"):
        passed, summary = prove_lfsr(tmp_path / mode, steps_per_cycle=4, mode=mode)
        assert passed, summary


def test_the_proof_rejects_a_shadow_one_step_short(tmp_path):
    passed, summary = prove_lfsr(tmp_path, steps_per_cycle=4, draw_steps=31)
    assert not passed and "failed assertion" in summary, summary
