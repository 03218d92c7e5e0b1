"""Causal Swin-DPM schedules checked against tables written out by hand."""

from __future__ import annotations

import pytest
import torch

from panbench.errors import ConfigError
from reference_model.ow.swin import (
    chunk_schedule,
    draw_swin_taus,
    flow_sigmas,
    shift_sigma,
    swin_schedule,
)


def test_flow_sigmas_uniform_grid_without_shift() -> None:
    assert flow_sigmas(4, 1.0) == [1.0, 0.75, 0.5, 0.25, 0.0]


def test_flow_sigmas_follow_wans_shift_formula() -> None:
    # Wan's shift, written out: sigma = s t / (1 + (s - 1) t).
    s = 3.0
    expected = [s * t / (1 + (s - 1) * t) for t in (1.0, 0.75, 0.5, 0.25, 0.0)]
    assert flow_sigmas(4, s) == pytest.approx(expected, abs=1e-12)
    assert flow_sigmas(4, s)[2] == pytest.approx(0.75)  # tau 1/2 is sigma 3/4 at shift 3
    assert float(shift_sigma(torch.tensor(0.5), 5.0)) == pytest.approx(5 / 6)


def test_swin_window_table_three_chunks_four_steps() -> None:
    phases = swin_schedule(3, 4, 1.0)
    first_half = ((1.0, 0.75), (0.75, 0.5))  # the later slot: tau 1 -> 1/2
    second_half = ((0.5, 0.25), (0.25, 0.0))  # the earlier slot: tau 1/2 -> 0
    table = [
        # cond source, earlier chunk, later chunk
        (0, None, 1),
        (0, 1, 2),
        (1, 2, 3),
        (2, 3, None),
    ]
    assert len(phases) == 4
    for phase, (cond, earlier, later) in zip(phases, table, strict=True):
        assert (phase.cond_source, phase.earlier, phase.later) == (cond, earlier, later)
        assert phase.earlier_sigmas == (second_half if earlier else ())
        assert phase.later_sigmas == (first_half if later else ())
    # Each chunk spends half the steps in each slot and ends clean.
    for chunk in (1, 2, 3):
        walk = [s for p in phases if p.later == chunk for s in p.later_sigmas]
        walk += [s for p in phases if p.earlier == chunk for s in p.earlier_sigmas]
        assert [a for a, _ in walk] == [1.0, 0.75, 0.5, 0.25] and walk[-1][1] == 0.0


def test_swin_earlier_chunk_is_half_a_schedule_ahead() -> None:
    phase = swin_schedule(2, 8, 1.0)[1]
    for (e_from, _), (l_from, _) in zip(phase.earlier_sigmas, phase.later_sigmas, strict=True):
        assert e_from == pytest.approx(l_from - 0.5)
    assert phase.earlier_sigmas[0][0] == pytest.approx(phase.later_sigmas[0][0] / 2)


def test_chunk_schedule_table() -> None:
    phases = chunk_schedule(2, 2, 1.0)
    assert [(p.cond_source, p.earlier, p.later) for p in phases] == [(0, None, 1), (1, None, 2)]
    assert phases[1].later_sigmas == ((1.0, 0.5), (0.5, 0.0))


@pytest.mark.parametrize("steps", [0, 1, 3])
def test_swin_refuses_odd_steps(steps: int) -> None:
    with pytest.raises(ConfigError, match="even"):
        swin_schedule(2, steps, 1.0)


def test_schedules_refuse_no_chunks_and_bad_shift() -> None:
    with pytest.raises(ConfigError, match="at least one chunk"):
        swin_schedule(0, 4, 1.0)
    with pytest.raises(ConfigError, match="positive flow shift"):
        flow_sigmas(4, 0.0)


def test_training_draws_pair_earlier_half_a_schedule_lower() -> None:
    tau_e, tau_l = draw_swin_taus(1000, torch.Generator().manual_seed(0))
    assert bool((tau_l > 0.5).all()) and bool((tau_l <= 1.0).all())
    assert torch.allclose(tau_e, tau_l - 0.5)
    assert bool((tau_e < tau_l).all())
    # Uniform over (1/2, 1]: the mean is 3/4 and both quarters of the range are used.
    assert abs(float(tau_l.mean()) - 0.75) < 0.02
    assert bool((tau_l < 0.6).any()) and bool((tau_l > 0.9).any())
    again = draw_swin_taus(1000, torch.Generator().manual_seed(0))
    assert torch.equal(again[1], tau_l)
