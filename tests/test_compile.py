"""Compiled variants (config key compile, --compile; effprof/measure/compile.py).

Most tests compile with dynamo's `eager` backend (tracing and graph breaks without inductor's C++ build);
importing torch._dynamo alone takes seconds, so every test that compiles is marked slow. The last compiles
with inductor as users do.
"""

from __future__ import annotations

import functools
import json

import pytest
import torch
from typer.testing import CliRunner

from effprof.cli import app
from effprof.config import ConfigError
from effprof.measure import compile as compiling
from effprof.measure.harness import Options, measure_point
from effprof.runner import plan
from effprof.store.records import point_identity, validate_record

runner = CliRunner()
QUICK = Options(max_time_s=0.02, fvcore=False, roofline=False)
F = "tests.plugins.compiled"
SMALL = {"seq_len": 16, "d_model": 16}


@pytest.fixture
def eager_backend(monkeypatch):
    """torch.compile with the `eager` backend: dynamo traces (and breaks graphs) but nothing is built."""
    monkeypatch.setattr(compiling.torch, "compile", functools.partial(torch.compile, backend="eager"))


def _module(factory: str) -> str:
    from effprof.modules import resolve_targets

    return resolve_targets([f"{F}:{factory}"], [], [], dict(SMALL))[0]


@pytest.mark.slow  # the first compile imports torch._dynamo: seconds
def test_a_compiled_point_counts_flops_on_the_eager_module_and_records_the_compile(eager_backend):
    name = _module("tiny_mlp")
    eager = measure_point(name, "forward", dict(SMALL), QUICK)
    compiled = measure_point(name, "forward", {**SMALL, "compile": "default"}, QUICK)
    assert compiled["status"] == "ok", compiled["error"]
    assert compiled["compile"] == "default" and "compile" not in eager
    for key in ("flops_counted", "flops_analytic", "params", "bytes_moved"):
        assert compiled[key] == eager[key], key
    assert compiled["compile_time_s"] > 0 and compiled["time_s"] > 0 and compiled["peak_bytes"] is not None
    assert compiled["graph_breaks"] == 0 and compiled["graph_break_reasons"] == ""
    assert "compile_time_s" not in eager and "graph_breaks" not in eager
    assert validate_record(compiled) is None


@pytest.mark.slow  # the first compile imports torch._dynamo: seconds
def test_graph_breaks_are_counted_with_their_reason(eager_backend):
    record = measure_point(_module("breaking_mlp"), "forward", {**SMALL, "compile": "default"}, QUICK)
    assert record["status"] == "ok", record["error"]
    assert record["graph_breaks"] >= 1 and "graph_break" in record["graph_break_reasons"]


@pytest.mark.slow  # the first compile imports torch._dynamo: seconds
@pytest.mark.parametrize("mode", ["train", "decode"])
def test_train_and_decode_compile_what_they_call(eager_backend, mode):
    record = measure_point("softmax_attention", mode, {**SMALL, "compile": "default", "gen_len": 2}, QUICK)
    assert record["status"] == "ok", record["error"]
    assert record["compile_time_s"] > 0 and record["time_s"] > 0


@pytest.mark.slow  # the first compile imports torch._dynamo: seconds
def test_a_form_that_fails_to_compile_gives_an_error_record_not_a_crash(monkeypatch):
    def refuse(graph, example_inputs):
        raise RuntimeError("this backend compiles nothing")

    monkeypatch.setattr(compiling.torch, "compile", functools.partial(torch.compile, backend=refuse))
    record = measure_point(_module("tiny_mlp"), "forward", {**SMALL, "compile": "default"}, QUICK)
    assert record["status"] == "error"
    assert "this backend compiles nothing" in record["compile_error"] and record["error"].startswith("torch.compile failed")
    assert record["flops_counted"] > 0  # the eager counts made before compiling are kept
    assert validate_record(record) is None


def test_a_bad_compile_mode_is_refused_naming_the_modes():
    with pytest.raises(ConfigError, match="compile='fast' is not a torch.compile mode; accepted: none, default"):
        plan(["softmax_attention"], {}, ["forward"], {**SMALL, "compile": "fast"})


@pytest.mark.parametrize("args, message", [
    (["--compile", "--compile-mode", "fast"], "--compile-mode 'fast' is not a torch.compile mode"),
    (["--compile-mode", "max-autotune"], "--compile-mode max-autotune needs --compile"),
    (["--compile", "--vary", "compile=none,default"], "--compile and --vary compile=... both choose"),
    (["--param", "compile=fast"], "compile='fast' is not a torch.compile mode"),
])
def test_bad_compile_flags_exit_2_with_one_line(args, message, tmp_path):
    result = runner.invoke(app, ["sweep", "softmax_attention", "--vary", "seq_len=16,32", "-o", str(tmp_path / "r.jsonl"), *args])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "r.jsonl").exists() or not (tmp_path / "r.jsonl").read_text()


def test_compile_plans_each_point_eager_and_compiled():
    from effprof.cli.options import with_compile

    varied = with_compile({"seq_len": ["16", "32"]}, True, "max-autotune")
    points = plan(["softmax_attention"], varied, ["forward"], {"d_model": 16})
    assert sorted((p[2]["seq_len"], p[2]["compile"]) for p in points) == [
        ("16", "max-autotune"), ("16", "none"), ("32", "max-autotune"), ("32", "none")]
    assert with_compile({"seq_len": ["16"]}, False, "default") == {"seq_len": ["16"]}


def test_an_eager_record_is_the_same_point_as_one_from_before_the_key():
    before = {"mechanism": "m", "mode": "forward", "seq_len": 16}
    assert point_identity({**before, "compile": "none"}) == point_identity(before)
    assert point_identity({**before, "compile": "default"}) != point_identity(before)


@pytest.mark.slow
def test_a_sweep_with_compile_gives_eager_and_compiled_series_in_one_fit(eager_backend, tmp_path):
    out = tmp_path / "r.jsonl"
    result = runner.invoke(app, ["sweep", f"--module={F}:tiny_mlp", "--vary", "seq_len=16,32,64", "--compile",
                                 "--max-time", "0.05", "-o", str(out)])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["compile"] for r in records) == ["default"] * 3 + ["none"] * 3
    compiled = [r for r in records if r["compile"] == "default"]
    assert all(r["status"] == "ok" and r["compile_time_s"] > 0 and r["graph_breaks"] == 0 for r in compiled)
    eager = {r["seq_len"]: r for r in records if r["compile"] == "none"}
    assert all(r["flops_counted"] == eager[r["seq_len"]]["flops_counted"] for r in compiled)
    fit = runner.invoke(app, ["fit", str(out), "--json"])
    variants = {row["variant"] for row in json.loads(fit.output) if row["metric"] == "time"}
    assert variants == {"compile=none", "compile=default"}


@pytest.mark.slow
def test_inductor_compiles_a_point_as_users_run_it():
    """inductor itself (a C++ build on CPU): the cold call costs far more than a warm one."""
    record = measure_point(_module("tiny_mlp"), "forward", {**SMALL, "compile": "default"}, QUICK)
    assert record["status"] == "ok", record["error"]
    assert record["compile_time_s"] > 10 * record["time_s"] and record["graph_breaks"] == 0
