"""One point identity: the report's aggregation groups records as --resume, merge and the baseline diff do (records.point_identity)."""

from __future__ import annotations

import pandas as pd

from effprof.analyse.points import aggregate
from effprof.store.records import point_identity


def _record(**extra) -> dict:
    return {"mechanism": "mamba", "mode": "forward", "status": "ok", "error": "", "seq_len": 256, "d_model": 64, "time_s": 1.0,
            "flops_counted": 10.0, **extra}


def test_the_same_point_written_two_ways_is_one_point():
    eager, eager_named = _record(time_s=1.0), _record(time_s=3.0, compile="none")
    assert point_identity(eager) == point_identity(eager_named)
    points = aggregate(pd.DataFrame([eager, eager_named, _record(compile="default", time_s=9.0)]))
    assert points["n"].tolist() == [2, 1]  # compile=none is the eager point; a compiled one is another
    assert points["time_s"].tolist() == [2.0, 9.0]


def test_other_points_and_failures_stay_apart():
    rows = [_record(seq_len=256), _record(seq_len=512), _record(seq_len=256, status="oom", error="out of memory"),
            _record(seq_len=256, status="oom", error="out of memory"), _record(seq_len=256, impl="chunked")]
    points = aggregate(pd.DataFrame(rows))
    assert points["n"].tolist() == [1, 1, 2, 1]
    assert points["seq_len"].tolist() == [256, 512, 256, 256]


def test_a_series_is_joined_on_its_structured_key_not_its_text():
    """A config value with ',' and '=' in it (a hybrid's layer pattern) broke the k=v,k=v text the renderers parsed back."""
    from effprof.analyse.frames import series_rows
    from effprof.analyse.session import analyse
    from effprof.store import synthetic

    records = []
    for pattern, noise in (("A,M=2", 0.6), ("M", 0.0)):  # the first series is timed noisily, the second is not
        for r in synthetic.records(series=1, sizes=4, noise=noise, seed=5):
            records.append({**r, "mechanism": "hybrid", "pattern": pattern, "claims": [["time", "seq_len", 2.0, 0.0]]})
    session = analyse(records)
    time_fits = {f["config"]["pattern"]: f for f in session.fits if f["metric"] == "time"}
    assert set(time_fits) == {"A,M=2", "M"}
    assert time_fits["A,M=2"]["noisy_points"] > 0 and time_fits["M"]["noisy_points"] == 0
    assert len(series_rows(session.frame, time_fits["A,M=2"]["config"])) == 4
