"""The roofline: per-op counts, the bound model on synthetic counts, the ceilings' cache, named hardware and its TOML
files, projections (count-only records included), the record fields and every renderer showing them. No timing is asserted."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from effprof.analyse.session import analyse
from effprof.cli import app
from effprof.hardware import model
from effprof.hardware.model import OpCount, Roofs, bound, totals_bound
from effprof.hardware.project import project_records, projection
from effprof.hardware.registry import BUILTIN, DTYPES, describe
from effprof.hardware.user import HardwareError, find, load_file
from effprof.measure import roofline
from effprof.measure.flops import FlopCounter
from effprof.measure.roofline_check import summarize
from effprof.store.records import validate_record

# ---- per-op counts at the dispatcher -------------------------------------------------------------


def test_every_op_dispatched_is_counted_with_its_flops_bytes_and_calls():
    a, b = torch.randn(16, 32), torch.randn(32, 8)
    with FlopCounter() as c:
        y = a @ b  # mm: 2·16·32·8 FLOPs, reads 16·32 + 32·8 floats, writes 16·8
        z = y.view(128)  # a view: a call, no traffic
        w = z.clone()  # a copy: free of FLOPs, not of traffic
        w.exp()
        w.exp()
    assert c.ops["mm"] == [2 * 16 * 32 * 8, 4 * (16 * 32 + 32 * 8 + 16 * 8), 1]
    assert c.ops["view"] == [0, 0, 1]
    assert c.ops["clone"] == [0, 4 * 2 * 128, 1]
    assert c.ops["exp"] == [2 * 128, 2 * 4 * 2 * 128, 2]
    assert sum(f for f, _, _ in c.ops.values()) == c.total  # the per-op table and the total agree
    assert c.bytes_moved == c.ops["mm"][1] + c.ops["exp"][1]  # bytes_moved keeps its meaning: counted ops only


def test_an_unsafe_view_moves_nothing():
    x, w = torch.randn(2, 4, 8), torch.randn(8, 8)
    with FlopCounter() as c:
        x @ w  # a batched input times a matrix: aten::mm on the flattened input, its result reshaped by aten::_unsafe_view
    assert c.ops["_unsafe_view"][1:] == [0, 1] and c.ops["mm"][1] > 0


# ---- the model on synthetic counts ---------------------------------------------------------------

ROOFS = Roofs(matmul=((0.0, 1e9), (1e6, 1e10)), bandwidth=((1e3, 1e11), (1e6, 1e9)), transcendental_flops_per_s=1e8, overhead_s=1e-6)


def test_each_op_takes_the_larger_of_its_compute_and_memory_times_plus_its_overhead():
    ops = {"mm": OpCount(flops=4e6, bytes=4e3, calls=2),  # 2e6 FLOPs per call: the 1e10 rung; compute 4e-4 s > memory 4e-6 s
           "add": OpCount(flops=1e3, bytes=4e6, calls=1),  # working set 4e6 B: beyond the 1e6 rung, 1e9 B/s -> memory 4e-3 s
           "view": OpCount(flops=0, bytes=0, calls=1000)}  # overhead only: 1e-3 s
    b = bound(ops, ROOFS)
    assert b.compute_s == pytest.approx(4e-4)
    assert b.memory_s == pytest.approx(4e-3)
    assert b.overhead_s == pytest.approx(1003e-6)
    assert b.time_s == pytest.approx(4e-4 + 4e-3 + 1003e-6)
    assert b.limit == "memory"
    assert b.by_op["mm"] == pytest.approx(4e-4 + 2e-6)
    fields = b.fields()
    assert fields["roofline_limit"] == "memory" and fields["roofline_bound_s"] == pytest.approx(b.time_s)


def test_small_matmuls_and_small_working_sets_get_their_own_rungs():
    assert ROOFS.compute_rate("mm", 5e5) == 1e9  # below the 1e6 rung: the smaller matmul's rate
    assert ROOFS.compute_rate("mm", 1e6) == 1e10
    assert ROOFS.compute_rate("exp", 1e9) == 1e8  # transcendental: the exp rate
    assert ROOFS.compute_rate("add", 10) == 1e10  # other ops: the peak (their bytes limit them first)
    assert ROOFS.memory_rate(500) == 1e11  # fits the in-cache rung
    assert ROOFS.memory_rate(2e3) == 1e9 and ROOFS.memory_rate(1e9) == 1e9  # beyond: the largest rung


def test_which_term_limits_is_the_largest():
    compute = bound({"mm": OpCount(1e10, 1.0, 1)}, ROOFS)
    overhead = bound({"view": OpCount(0, 0, 10)}, ROOFS)
    assert (compute.limit, overhead.limit) == ("compute", "overhead")
    assert bound({"view": OpCount(0, 0, 10)}, ROOFS, overhead=False).time_s == 0.0
    assert bound({"mm": OpCount(1.0, 1.0, 0)}, ROOFS).time_s == 0.0  # no call, no time


def test_the_coarse_bound_of_totals():
    b = totals_bound(flops=1e10, bytes_moved=2e9, roofs=ROOFS)
    assert b.time_s == pytest.approx(2.0) and b.limit == "memory"  # 2e9 B at 1e9 B/s (beyond cache) beats 1e10 FLOPs at 1e10
    b = totals_bound(flops=3e10, bytes_moved=2e9, roofs=ROOFS)
    assert b.time_s == pytest.approx(3.0) and b.limit == "compute"


@pytest.mark.parametrize("matmul, bandwidth", [((), ((0, 1.0),)), (((0, 0.0),), ((0, 1.0),)), (((0, 1.0),), ((5, 1.0), (1, 1.0))),
                                               (((0, 1.0),), ((0, -1.0),))])
def test_roofs_refuse_missing_non_positive_or_unordered_rungs(matmul, bandwidth):
    with pytest.raises(ValueError):
        Roofs(matmul=matmul, bandwidth=bandwidth)


# ---- the ceilings: measured once per machine, cached ---------------------------------------------


def _fake_ceilings(key, threads=1):
    return roofline.Ceilings(**key, matmul=[[64, 2 * 64**3, 1e9], [128, 2 * 128**3, 5e8]], bandwidth=[[1024, 5e10, 6e10], [1 << 30, 1e9, 2e9]],
                             exp_flops_per_s=1e8, overhead_s=2e-6)


def test_ceilings_measured_on_a_busy_machine_are_not_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("EFFPROF_CACHE", str(tmp_path))
    measured = []
    monkeypatch.setattr(roofline, "measure_ceilings", lambda device, dtype, threads, key, clock="wall": measured.append(key) or _fake_ceilings(key))
    monkeypatch.setattr(roofline, "_busy", lambda: True)
    for _ in range(2):
        roofline.machine_ceilings.cache_clear()
        roofline.machine_ceilings("cpu", "float32", 1)
    roofline.machine_ceilings.cache_clear()
    assert len(measured) == 2 and not list(tmp_path.rglob("*.json"))  # used for that run only, measured again after


def test_ceilings_are_measured_once_and_read_back_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EFFPROF_CACHE", str(tmp_path))
    measured = []
    monkeypatch.setattr(roofline, "measure_ceilings", lambda device, dtype, threads, key, clock="wall": measured.append(key) or _fake_ceilings(key))
    monkeypatch.setattr(roofline, "_busy", lambda: False)  # a quiet machine: what is cached (a busy one is tested above)
    roofline.machine_ceilings.cache_clear()
    first = roofline.machine_ceilings("cpu", "float32", 1)
    roofline.machine_ceilings.cache_clear()
    again = roofline.machine_ceilings("cpu", "float32", 1)
    assert len(measured) == 1 and again == first
    assert first.peak_flops_per_s == 1e9 and first.beyond_cache_bytes_per_s == 2e9 and first.in_cache_bytes_per_s == 6e10
    assert first.roofs().matmul == ((2 * 64**3, 1e9), (2 * 128**3, 5e8))  # each rung as measured
    assert first.roofs().bandwidth == ((1024, 6e10), (1 << 30, 2e9))  # the triad's
    files = list((tmp_path / "effprof" / "ceilings").glob("*.json"))
    assert len(files) == 1 and json.loads(files[0].read_text())["machine"] == first.machine
    roofline.machine_ceilings.cache_clear()
    roofline.machine_ceilings("cpu", "float32", 2)  # another thread count is another machine setting
    files[0].write_text("{ not json")  # a damaged cache is measured again, not trusted
    roofline.machine_ceilings.cache_clear()
    roofline.machine_ceilings("cpu", "float32", 1)
    monkeypatch.setenv("EFFPROF_REMEASURE_CEILINGS", "1")
    roofline.machine_ceilings.cache_clear()
    roofline.machine_ceilings("cpu", "float32", 1)
    assert len(measured) == 4
    roofline.machine_ceilings.cache_clear()
    for threads, device in ((2, "cpu"), (1, "cuda")):  # CPU time measures one thread's work, on a CPU only
        with pytest.raises(ValueError, match="clock"):
            roofline.machine_ceilings(device, "float32", threads, "cpu")
    with pytest.raises(ValueError, match="clock"):
        roofline.machine_ceilings("cpu", "float32", 1, "gpu")


def test_a_record_carries_its_bound_and_the_machine_ceilings(tmp_path, monkeypatch):
    from effprof.measure.harness import Options, measure_point

    monkeypatch.setenv("EFFPROF_CACHE", str(tmp_path))
    monkeypatch.setattr(roofline, "measure_ceilings", lambda device, dtype, threads, key, clock="wall": _fake_ceilings(key))
    roofline.machine_ceilings.cache_clear()
    try:
        record = measure_point("softmax_attention", "forward", {"seq_len": 32, "d_model": 16}, Options(max_time_s=0.01, fvcore=False, memory=False))
    finally:
        roofline.machine_ceilings.cache_clear()
    assert record["status"] == "ok"
    assert sum(op["flops"] for op in record["ops"].values()) == pytest.approx(record["flops_counted"])
    expected = bound(model.op_counts(record["ops"]), _fake_ceilings(roofline._key("cpu", "cpu", "float32", 1)).roofs())
    assert record["roofline_bound_s"] == pytest.approx(expected.time_s) and record["roofline_limit"] == expected.limit
    assert record["roofline_fraction"] == pytest.approx(record["roofline_bound_s"] / record["time_s"])
    assert record["dispatch_overhead_s"] == 2e-6 and record["bandwidth_in_cache_bytes_per_s"] == 6e10
    assert validate_record(json.loads(json.dumps(record))) is None


@pytest.mark.parametrize("field, value", [("roofline_limit", "fast"), ("projected_limit", 3), ("ops", [1, 2]), ("ops", {"mm": {"flops": -1}}),
                                          ("roofline_bound_s", -1.0), ("bandwidth_in_cache_bytes_per_s", 0)])
def test_bad_roofline_fields_are_refused(field, value):
    assert validate_record({"mechanism": "m", "mode": "forward", field: value}) is not None


# ---- named hardware ------------------------------------------------------------------------------


def test_every_builtin_figure_has_a_source_and_dense_is_half_the_sparse():
    assert set(BUILTIN) == {"h100-sxm", "h100-pcie", "h200", "a100-40gb", "a100-80gb", "l4", "l40s", "rtx-4090", "mi300x"}
    for hardware in BUILTIN.values():
        assert hardware.bandwidth > 0 and hardware.source_of("bandwidth")
        assert set(hardware.flops) <= set(DTYPES) and {"fp32", "bf16", "fp16"} <= set(hardware.flops)
        for dtype, value in hardware.flops.items():
            assert value > 0 and hardware.source_of(dtype), (hardware.name, dtype)
            if dtype in hardware.sparse_flops:
                assert hardware.sparse_flops[dtype] == pytest.approx(2 * value, rel=1e-3)  # dense figures (AMD rounds each); sparse named as such
        assert len(describe(hardware)) >= 1 + len(hardware.flops)
    assert "fp8" not in BUILTIN["a100-80gb"].flops  # a figure the datasheet does not give is absent
    assert BUILTIN["h100-sxm"].bandwidth == 3.35e12 and BUILTIN["h100-sxm"].flops["bf16"] == pytest.approx(989.5e12)


GOOD = """
[hardware.my-gpu]
title = "My GPU"
bandwidth = 1e12
source = "My vendor datasheet"
[hardware.my-gpu.flops]
fp32 = 2e13
bf16 = 1e14
[hardware.my-gpu.sources]
bf16 = "My vendor whitepaper"
"""


def test_a_user_file_adds_hardware(tmp_path):
    path = tmp_path / "hw.toml"
    path.write_text(GOOD)
    entry = find("my-gpu", path)
    assert entry.title == "My GPU" and entry.flops == {"fp32": 2e13, "bf16": 1e14}
    assert entry.source_of("bf16") == "My vendor whitepaper" and entry.source_of("fp32") == "My vendor datasheet"


@pytest.mark.parametrize("text, says", [
    ("not toml [", "not valid TOML"),
    ("[other]\nx = 1", "top-level key 'other'"),
    ("x = 1", "top-level key 'x'"),
    ("[hardware]", "no [hardware.NAME]"),
    (GOOD.replace("bandwidth = 1e12", "bandwidth = -1"), "bandwidth = -1"),
    (GOOD.replace("bandwidth = 1e12", 'bandwidth = "fast"'), "bandwidth = 'fast'"),
    (GOOD.replace("bandwidth = 1e12", "bandwidth = true"), "bandwidth = True"),
    (GOOD.replace("bandwidth = 1e12", "bandwidth = inf"), "bandwidth = inf"),
    (GOOD.replace("fp32 = 2e13", "fp64 = 2e13"), "flops.fp64 is not a dtype"),
    (GOOD.replace("fp32 = 2e13", "fp32 = 0"), "flops.fp32 = 0"),
    (GOOD.replace('source = "My vendor datasheet"', ""), "source is missing"),
    (GOOD.replace("title =", "colour = 1\ntitle ="), "colour is not a key"),
    (GOOD.replace("[hardware.my-gpu.sources]\nbf16", "[hardware.my-gpu.sources]\nhbm"), "sources.hbm names no figure"),
    (GOOD.replace("my-gpu", "h100-sxm"), "is built in"),
    (GOOD.replace("[hardware.my-gpu]", "[hardware.'bad name']").replace("hardware.my-gpu.", "hardware.'bad name'."), "name 'bad name'"),
    ("[hardware.x]\nbandwidth = 1e12\nsource = 's'\nflops = {}", "flops is missing or empty"),
])
def test_a_bad_hardware_file_is_refused_in_one_line(tmp_path, text, says):
    path = tmp_path / "hw.toml"
    path.write_text(text)
    with pytest.raises(HardwareError, match=None) as error:
        load_file(path)
    assert says in str(error.value) and "\n" not in str(error.value)
    result = CliRunner().invoke(app, ["report", str(tmp_path / "none.jsonl"), "-o", str(tmp_path / "r.html"), "--hardware", "x",
                                      "--hardware-file", str(path)])
    assert result.exit_code == 2 and "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_an_unknown_hardware_name_lists_the_known_ones(tmp_path):
    with pytest.raises(HardwareError, match="h100-sxm"):
        find("h100")
    with pytest.raises(HardwareError, match="does not exist"):
        find("x", tmp_path / "missing.toml")


# ---- projections -------------------------------------------------------------------------------

COUNT_ONLY = {"mechanism": "softmax_attention", "mode": "forward", "status": "ok", "dtype": "bfloat16", "seq_len": 131072,
              "flops_counted": 4.5e14, "bytes_moved": 2.0e11}  # counted, never timed (effprof's count-only records)


def test_a_count_only_record_projects_from_its_totals():
    fields = projection(COUNT_ONLY, BUILTIN["h100-sxm"])
    compute, memory = 4.5e14 / 989.5e12, 2.0e11 / 3.35e12
    assert fields["projected_time_s"] == pytest.approx(max(compute, memory)) and fields["projected_limit"] == "compute"
    assert fields["projected_hardware"] == "h100-sxm"


def test_a_measured_record_projects_op_by_op_without_overhead():
    record = {**COUNT_ONLY, "dtype": "float32",
              "ops": {"mm": {"flops": 6.7e13, "bytes": 1e9, "calls": 4}, "add": {"flops": 1e6, "bytes": 3.35e12, "calls": 1},
                      "view": {"flops": 0, "bytes": 0, "calls": 100}}}
    fields = projection(record, BUILTIN["h100-sxm"])
    assert fields["projected_time_s"] == pytest.approx(1.0 + 1.0)  # mm: 6.7e13 / 67e12 fp32; add: 3.35e12 B at 3.35 TB/s; views free
    assert fields["projected_limit"] in ("compute", "memory")


def test_what_cannot_be_projected_is_left_unprojected_and_said():
    failed = {**COUNT_ONLY, "status": "oom"}
    uncounted = {k: v for k, v in COUNT_ONLY.items() if k not in ("flops_counted", "bytes_moved")}
    half = {**COUNT_ONLY, "dtype": "float16"}
    assert projection(failed, BUILTIN["l4"]) == {} and projection(uncounted, BUILTIN["l4"]) == {}
    from effprof.hardware.registry import Hardware

    fp32_only = Hardware(name="x", title="X", bandwidth=1e12, flops={"fp32": 1e13}, sources={"all": "s"})
    records, notes = project_records([half, COUNT_ONLY], fp32_only)
    assert all("projected_time_s" not in r or r["projected_time_s"] is None for r in records)
    assert len(notes) == 2 and "float16" in notes[0] and "\n" not in notes[0]


def _records(hardware_fields: bool = True) -> list[dict]:
    rows = []
    for name, p in (("softmax_attention", 2), ("mamba", 1)):
        for n in (256, 512, 1024):
            t = 1e-8 * n**p
            rows.append({"mechanism": name, "mode": "forward", "status": "ok", "seq_len": n, "dtype": "float32", "time_s": t,
                         "flops_counted": 1e3 * n**p, "bytes_moved": 10.0 * n, "arithmetic_intensity": 100.0 * n ** (p - 1),
                         "achieved_flops_per_s": 1e3 * n**p / t, "peak_flops_per_s": 1e11, "peak_bytes_per_s": 1e10,
                         "bandwidth_in_cache_bytes_per_s": 5e10, "dispatch_overhead_s": 2e-6, "roofline_bound_s": 0.5 * t,
                         "roofline_limit": "compute" if p == 2 else "memory", "roofline_fraction": 0.5,
                         "ops": {"mm": {"flops": 1e3 * n**p, "bytes": 10.0 * n, "calls": 3}}})
    return rows


def test_every_renderer_shows_the_bound_intensity_fraction_and_projection(tmp_path):
    from rich.console import Console

    from effprof.render import console, export, html

    session = analyse(_records(), hardware=BUILTIN["h100-sxm"])
    table = console.roofline_table(session)
    text = Console(width=200, record=True)
    text.print(table)
    shown = text.export_text()
    assert "50%" in shown and "I100" in shown and "→" in shown and "h100-sxm" in shown and " C " in shown and " M " in shown
    page = html.render(session)
    assert "Achieved fraction of the bound" in page and "Projection onto NVIDIA H100 SXM5" in page and "datasheet" in page
    assert "roofline-forward" in page and "measured memory bandwidth in cache" in page
    tex = export.latex(session)
    assert "Roofline at the largest size" in tex and "Projected on h100-sxm" in tex
    paths = export.write_csv(session, tmp_path / "r.csv")
    frame = pd.read_csv(paths[0])
    assert {"roofline_bound_s", "roofline_fraction", "arithmetic_intensity", "roofline_limit", "projected_time_s"} <= set(frame.columns)
    assert frame["projected_hardware"].eq("h100-sxm").all()


def test_report_projects_with_hardware_and_the_projection_is_labelled(tmp_path):
    results = tmp_path / "r.jsonl"
    results.write_text("".join(json.dumps(r) + "\n" for r in _records()))
    result = CliRunner().invoke(app, ["report", str(results), "-o", str(tmp_path / "r.html"), "--hardware", "a100-80gb"])
    assert result.exit_code == 0, result.output
    page = (tmp_path / "r.html").read_text()
    assert "projected on a100-80gb (lower bound)" in page and "not a measurement" in page
    assert "projected_hardware" not in results.read_text()  # the results file keeps what was measured
    bad = CliRunner().invoke(app, ["report", str(results), "-o", str(tmp_path / "r.html"), "--hardware", "b200"])
    assert bad.exit_code == 2 and "not known" in bad.output and "h100-sxm" in bad.output


def test_the_roofline_figure_draws_roofs_per_dtype_and_both_bandwidths_and_marks_growth():
    from effprof.render.roofline import largest_size_rows, roofline_figures

    frame = pd.DataFrame(_records())
    (fig,) = roofline_figures(frame)
    roofs = [t for t in fig.data if t.name and t.name.startswith("roof")]
    assert {t.line.dash for t in roofs} == {"solid", "dot"}  # beyond the caches, in cache
    points = [t for t in fig.data if t.name == "mamba"]
    assert list(points[0].x) == [100.0, 100.0, 100.0] and list(points[0].marker.symbol)[-1] == "arrow"
    rows = largest_size_rows(frame)
    assert [(r["series"], r["size"]) for r in rows] == [("softmax_attention", "1024"), ("mamba", "1024")]


# ---- the validation's arithmetic ----------------------------------------------------------------


def test_summary_of_errors_takes_the_median_and_worst_and_counts_within_2x():
    rows = [{"mechanism": m, "seq_len": 1, "error": e} for m, e in (("a", -0.1), ("b", 0.2), ("c", -0.6), ("d", 1.5))]
    s = summarize(rows)
    assert s["median_abs"] == pytest.approx(0.4) and s["worst"]["mechanism"] == "d" and s["within_2x"] == 2
    assert summarize([{"mechanism": "x", "seq_len": 1}])["points"] == 0


# ---- the device check's projection step ---------------------------------------------------------


def test_the_gpu_is_detected_by_name_and_an_unknown_one_is_not_guessed():
    from effprof.hardware.check import detect

    assert detect("NVIDIA H100 80GB HBM3") == "h100-sxm" and detect("NVIDIA H100 PCIe") == "h100-pcie"
    assert detect("NVIDIA A100-SXM4-40GB") == "a100-40gb" and detect("NVIDIA L40S") == "l40s" and detect("NVIDIA L4") == "l4"
    assert detect("Tesla T4") is None and detect("x86_64") is None


def test_the_device_check_reports_each_points_error_and_flags_a_broken_bound():
    from effprof.hardware.check import compare

    record = {**COUNT_ONLY, "device_name": "NVIDIA H100 80GB HBM3", "time_s": 1.0}
    fast = {**record, "time_s": 1e-6}  # measured faster than the datasheet allows: the bound is broken
    rows, lines = compare([record, fast, {**record, "status": "oom"}])
    assert [r["hardware"] for r in rows] == ["h100-sxm", "h100-sxm"]
    assert rows[0]["error"] == pytest.approx(4.5e14 / 989.5e12 - 1.0)
    assert "ABOVE THE MEASUREMENT" in lines[1] and "ABOVE" not in lines[0] and lines[-1].startswith("median absolute error")
    _, skipped = compare([{**record, "device_name": "Tesla T4"}])
    assert "no registry entry" in skipped[0]


def test_the_api_projects_frames_and_lists_and_refuses_an_unknown_name(tmp_path):
    import effprof

    frame = effprof.project(pd.DataFrame([COUNT_ONLY]), "h100-sxm")
    assert frame["projected_limit"].tolist() == ["compute"] and frame["projected_time_s"].iloc[0] > 0
    assert effprof.project([COUNT_ONLY], BUILTIN["l4"])[0]["projected_hardware"] == "l4"
    with pytest.raises(HardwareError, match="not known"):
        effprof.project([COUNT_ONLY], "h100")
    page = effprof.report(pd.DataFrame(_records()), str(tmp_path / "r.html"), hardware="h200")
    assert "Projection onto NVIDIA H200" in (tmp_path / "r.html").read_text() and page.endswith("r.html")


def test_the_validation_table_reads_the_clock_asked_for_and_refuses_bad_arguments(capsys):
    import importlib.util
    from pathlib import Path

    from effprof.measure.roofline_check import markdown

    script = importlib.util.spec_from_file_location("roofline_check_script", Path(__file__).resolve().parent.parent / "scripts" / "roofline-check.py")
    command = importlib.util.module_from_spec(script)
    script.loader.exec_module(command)
    main = command.main  # scripts/roofline-check.py: the command line of effprof.measure.roofline_check

    rows = [{"mechanism": "a", "seq_len": 1024, "status": "ok", "measured": 2.0, "error": -0.5, "limit": "compute", "error_fastest": -0.4,
             "measured_cpu": 1.0, "error_cpu": -0.1, "limit_cpu": "memory"},
            {"mechanism": "b", "seq_len": 1024, "status": "oom", "error_text": "out of memory"}]
    cpu = markdown(rows, [1024], "header", "cpu")
    assert "| a | 1e+03 ms, -10% (memory) | 10% |" in cpu and "| b | oom | – |" in cpu
    assert "Against the CPU time (the table): median absolute error 10%" in cpu and "median wall time: median absolute error 50%" in cpu
    assert "| a | 2e+03 ms, -50% (compute) | 50% |" in markdown(rows, [1024], "header", "wall")
    assert main(["--clock", "cpu", "--threads", "2"]) == 2 and "--threads 1" in capsys.readouterr().err
    assert main(["--sizes", "0"]) == 2 and main(["--mechanisms", "nope"]) == 2


def test_a_counted_point_shows_its_projection_in_profiles_table():
    """--count-only --hardware: the count's projection is shown too (the counted branch of the table returned before it)."""
    from rich.console import Console

    from effprof.render.console import record_table

    record = {"mechanism": "softmax_attention", "mode": "forward", "status": "ok", "measured_by": "count", "flops_counted": 1e12,
              "projected_time_s": 0.167, "projected_limit": "compute", "projected_hardware": "h100-sxm"}
    console = Console(record=True, width=200)
    console.print(record_table(record))
    text = console.export_text()
    assert "projected on h100-sxm" in text and "roofline projection, not measured" in text
    console = Console(record=True, width=200)
    console.print(record_table({k: v for k, v in record.items() if not k.startswith("projected")}))
    assert "projected" not in console.export_text()
