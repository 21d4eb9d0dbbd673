"""One baseline diff: the report's and `effprof check`'s comparisons are the same function and agree, zero values included."""

from __future__ import annotations

import math

from effprof.analyse.session import baseline_diff
from effprof.check.baseline import compare_baseline
from effprof.store.records import SCHEMA_VERSION, to_frame


def _record(window: int, flops: float, peak: float = 1e6, **extra) -> dict:
    return {"schema": SCHEMA_VERSION, "mechanism": "sliding_window", "family": "sparse", "mode": "forward", "status": "ok", "seq_len": 1024,
            "d_model": 64, "batch": 1, "window": window, "flops_counted": flops, "peak_bytes": peak, **extra}


def test_zero_values_are_compared_one_way():
    old = [_record(64, 0.0), _record(128, 0.0), _record(256, 100.0)]
    new = [_record(64, 0.0), _record(128, 50.0), _record(256, 0.0)]
    diff = baseline_diff(to_frame(new), to_frame(old)).set_index(["point", "metric"])
    assert diff.loc[("window=64", "flops_counted"), "change"] == "same"
    worse = diff.loc[("window=128", "flops_counted")]
    assert worse["change"] == "worse" and math.isinf(worse["ratio"])  # an op counted now that was not before
    assert diff.loc[("window=256", "flops_counted"), "change"] == "better"
    regressions, notes = compare_baseline(new, old, {"flops": 1.0})
    assert len(regressions) == 1 and regressions[0].startswith("window=128 flops") and notes == []


def test_check_and_report_flag_the_same_points():
    old = [_record(w, 1000.0 * w, peak=1e6) for w in (64, 128, 256, 512)]
    new = [_record(64, 64_000.0, 1e6), _record(128, 128_000.0 * 1.004, 1e6), _record(256, 256_000.0 * 1.2, 1e6),
           _record(512, 512_000.0, 1.2e6)]
    report = baseline_diff(to_frame(new), to_frame(old))
    worse = {(r["point"], r["name"]) for r in report.to_dict("records") if r["change"] == "worse"}
    assert worse == {("window=256", "flops"), ("window=512", "peak_bytes")}  # 0.4% is within the counted band
    regressions, _ = compare_baseline(new, old, {"flops": 1.0, "peak_bytes": 1.0})
    assert sorted(line.split(" ")[0] + " " + line.split(" ")[1] for line in regressions) == sorted(f"{p} {m}" for p, m in worse)
    # the point label names the key that varies (window), not a hard-coded seq_len/d_model/batch
    assert all(line.startswith("window=") for line in regressions)
    relaxed, _ = compare_baseline(new, old, {"flops": 1.25, "peak_bytes": 1.25})
    assert relaxed == []


def test_no_common_point_is_said():
    regressions, notes = compare_baseline([_record(64, 1.0)], [_record(128, 1.0)], {"flops": 1.0})
    assert regressions == [] and notes == ["no point of this check is in the baseline: nothing compared"]
