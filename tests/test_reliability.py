"""Faults: isolated points that time out, run out of memory or crash become records; interrupted sweeps keep
every finished record and say how to resume; --resume and merge."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from effprof.cli import app
from effprof.measure.harness import Options
from effprof.runner import Isolation, pending, plan, run_points
from effprof.store.records import merge, read

runner = CliRunner()
QUICK = Options(max_time_s=0.02, fvcore=False, roofline=False)


def test_isolated_timeout_and_out_of_memory_become_records_and_the_sweep_goes_on():
    """A point that hangs (a plugin that sleeps 120 s at 64 tokens: a timeout whatever the machine's speed), a point
    far beyond --max-memory, and a fine point: timeout, oom, ok, in order."""
    from effprof.plugins import load_plugin
    from effprof.registry import unregister

    target = "tests.plugins.faulty:sleepy_conv"
    names = load_plugin(target)
    try:
        points = [
            ("sleepy_conv", "forward", {"seq_len": 64, "d_model": 16}),  # sleeps: times out
            ("softmax_attention", "forward", {"impl": "naive", "seq_len": 32768, "d_model": 16}),  # 8 GiB of scores: out of memory
            ("softmax_attention", "forward", {"seq_len": 32, "d_model": 16}),  # fine
        ]
        records = run_points(points, QUICK, isolation=Isolation(timeout_s=3, max_memory=1 << 30, plugins=(target,)))
    finally:
        for name in names:
            unregister(name)
    assert [r["status"] for r in records] == ["timeout", "oom", "ok"]
    assert "3 s" in records[0]["error"] and records[1]["error"]
    assert records[2]["flops_counted"] > 0


def test_interrupt_keeps_finished_records_and_prints_resume(tmp_path):
    out = tmp_path / "r.jsonl"
    args = [sys.executable, "-m", "effprof", "sweep", "linear_attention", "--vary", "seq_len=32,64,128,256,512,1024,2048,4096",
            "--param", "impl=recurrent", "--param", "d_model=16", "-o", str(out), "--max-time", "0.5"]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and (not out.exists() or len(out.read_text().splitlines()) < 2):
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130
    lines = out.read_text().splitlines()
    assert 2 <= len(lines) < 8
    assert all(json.loads(line)["status"] == "ok" for line in lines)  # every line whole: no half-written record
    assert "resume with:" in stderr and "--resume" in stderr and "Traceback" not in stderr


def test_resume_skips_points_already_measured_ok(tmp_path):
    out = tmp_path / "r.jsonl"
    base = ["sweep", "softmax_attention", "--param", "d_model=16", "-o", str(out), "--max-time", "0.02"]
    assert runner.invoke(app, [*base, "--vary", "seq_len=16,32"]).exit_code == 0
    result = runner.invoke(app, [*base, "--vary", "seq_len=16,32,64", "--resume"])
    assert result.exit_code == 0 and "2 of 3 points already" in result.output
    assert [r["seq_len"] for r in read(out)] == [16, 32, 64]


def test_pending_retries_failed_points():
    points = plan(["softmax_attention"], {"seq_len": [16, 32]}, ["forward"], {"d_model": 16})
    done = run_points(points[:1], QUICK)
    assert pending(points, done) == points[1:]
    done[0]["status"] = "error"
    assert pending(points, done) == points


def test_merge_drops_exact_duplicates_and_keeps_conflicts():
    a = {"mechanism": "m", "mode": "forward", "seq_len": 16, "time_s": 1.0, "status": "ok"}
    b = dict(a, time_s=2.0, device_name="other")
    merged, stats = merge([[a, b], [dict(a)]])
    assert merged == [a, b] and stats == {"records": 2, "duplicates": 1, "conflicts": 1}


def test_truncated_last_line_is_skipped_with_its_line_number(tmp_path):
    out = tmp_path / "r.jsonl"
    out.write_text(json.dumps({"mechanism": "m", "mode": "forward", "schema": 1}) + "\n" + '{"mechanism": "m", "mo')
    with pytest.warns(UserWarning, match=r"r\.jsonl:2"):
        assert len(read(out)) == 1


def test_same_point_is_recognised_whatever_else_the_records_carry():
    """A re-measurement differs in every result field (roofline, diagnostics, per-layer times); it is still the same
    point. A DataFrame row of a mixed frame (NaN for other mechanisms' keys, 2.0 for 2) is too."""
    import math

    from effprof.store.records import point_identity

    a = {"mechanism": "m", "mode": "forward", "seq_len": 16, "n_heads": 2, "status": "ok", "time_s": 1.0,
         "fraction_of_peak": 0.3, "bytes_moved": 10.0, "time_s_attention": 0.1, "aux_loss": 1.2}
    b = dict(a, time_s=2.0, fraction_of_peak=0.5, bytes_moved=11.0, time_s_attention=0.2, aux_loss=1.1)
    _, stats = merge([[a], [b]])
    assert stats["conflicts"] == 1
    row = dict(a, n_heads=2.0, window=math.nan)
    assert point_identity(row) == point_identity(a) != point_identity(dict(a, seq_len=32))
