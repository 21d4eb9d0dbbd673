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
