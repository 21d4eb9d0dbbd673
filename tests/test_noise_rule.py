"""One noise rule (issue 22): metrics.is_noisy_timing decides noise from (median, IQR) and NOISE_THRESHOLD; the
measure layer writes `time_noisy` with it and every reader judges (time_s, time_iqr_s) with it, never a stored
flag that the figures contradict."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from effprof.analyse.frames import noisy_mask
from effprof.analyse.points import aggregate
from effprof.analyse.session import analyse, noise_summary
from effprof.cli.output import sweep_warnings
from effprof.measure.timing import Timing
from effprof.render import style
from effprof.store.metrics import NOISE_THRESHOLD, is_noisy, is_noisy_timing


@pytest.mark.parametrize("median, iqr, noisy", [
    (1.0, 0.5, True), (1.0, 0.1000001, True), (1.0, NOISE_THRESHOLD, False),  # at the threshold: still meets it
    (1.0, 0.05, False), (1.0, 0.0, False), (0.0, 0.5, False), (-1.0, 0.5, False),  # no positive median: not a timing
    (None, 0.5, False), (1.0, None, False), (math.nan, 0.5, False), (1.0, math.nan, False), (2e-6, 1e-6, True),
])
def test_the_rule_on_median_and_iqr(median, iqr, noisy):
    assert is_noisy_timing(median, iqr) is noisy
    assert is_noisy({"time_s": median, "time_iqr_s": iqr}) is noisy


@pytest.mark.parametrize("median, iqr", [(1.0, 0.5), (1.0, 0.1), (0.2, 0.0200001), (0.0, 1.0), (3e-3, 1e-4)])
def test_the_measure_layer_writes_what_the_rule_says(median, iqr):
    assert Timing(median, iqr, 7, (median,) * 7).noisy is is_noisy_timing(median, iqr)


def _records() -> list[dict]:
    """Three series' points whose stored flags disagree with their figures in both directions, and records
    from before the flag existed; one quiet and one noisy point per series at n = 128."""
    rows = []
    for mech in ("a", "b", "c"):
        for n in (64, 128, 256, 512):
            noisy = n == 128
            rows.append({"schema": 2, "mechanism": mech, "mode": "forward", "status": "ok", "seq_len": n,
                         "time_s": 1e-3 * n, "time_iqr_s": (0.3 if noisy else 0.02) * 1e-3 * n,
                         "flops_counted": float(n * n), "claims": [["time", "seq_len", 1.0, 0.0]],
                         **({"time_noisy": not noisy} if mech == "a" else {"time_noisy": noisy} if mech == "b" else {})})
    return rows


def test_every_reader_flags_the_points_the_rule_flags_not_the_stored_flag():
    records = _records()
    frame = pd.DataFrame(records)
    expected = [is_noisy_timing(r["time_s"], r["time_iqr_s"]) for r in records]
    assert sum(expected) == 3
    assert noisy_mask(frame).tolist() == expected
    assert aggregate(frame)["time_noisy"].tolist() == expected
    assert noise_summary(frame)["noisy"] == 3
    session = analyse(records)
    time_fits = [f for f in session.fits if f["metric"] == "time"]
    assert [f["noisy_points"] for f in time_fits] == [1, 1, 1] and all(f["uncertain"] for f in time_fits)
    assert "3 of 12 points have noisy timing" in "\n".join(sweep_warnings(records))


def test_one_noisy_mask_remains():
    # the render layer's list-returning twin of frames.noisy_mask is gone: figures read the frames one
    assert not hasattr(style, "noisy_mask")
