"""Per-module breakdown: the nested record field, the tree, per-module fits and the share chart."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

import effprof
from effprof.analyse.fit_breakdown import breakdown_frame, fit_breakdown
from effprof.cli import app
from effprof.measure.breakdown import measure_breakdown, module_paths
from effprof.measure.flops import count_flops
from effprof.measure.harness import Options, measure_point
from effprof.render.breakdown import REST, breakdown_tree, share_figure

runner = CliRunner()
QUICK = Options(max_time_s=0.02, fvcore=False, roofline=False, breakdown=True)


def _forward(module: nn.Module, x: torch.Tensor):
    def run():
        with torch.no_grad():
            return module(x)
    return run


def test_children_of_a_sequential_add_up_to_the_whole():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 32), nn.GELU(), nn.Linear(32, 16))
    x = torch.randn(2, 8, 16)
    tree = measure_breakdown(model, _forward(model, x), repeats=2)
    assert list(tree) == ["", "0", "1", "2"]
    assert tree[""]["flops"] == count_flops(_forward(model, x)).total
    assert sum(tree[p]["flops"] for p in ("0", "1", "2")) == tree[""]["flops"]  # nothing computed between them
    assert tree["0"]["flops"] == 2 * 16 * 16 * 32 + 16 * 32  # the matmul and the bias add, 16 tokens
    assert all(row["time_s"] > 0 and row["calls"] == 1 for row in tree.values())
    assert tree["2"]["peak_bytes"] == 16 * 16 * 4  # its output, float32
    assert tree[""]["peak_bytes"] >= max(tree[p]["peak_bytes"] for p in ("0", "1", "2"))


def test_depth_limits_the_tree_and_a_module_called_twice_sums():
    shared = nn.Linear(8, 8)
    model = nn.Sequential(nn.Sequential(shared, nn.ReLU()), shared)
    tree = measure_breakdown(model, _forward(model, torch.randn(1, 4, 8)), depth=1, repeats=1)
    assert list(tree) == ["", "0"]  # the shared layer is reported once, where named_modules first names it: too deep here
    deep = measure_breakdown(model, _forward(model, torch.randn(1, 4, 8)), repeats=1)
    assert deep["0.0"]["calls"] == 2 and deep["0.0"]["flops"] == 2 * (2 * 4 * 8 * 8 + 4 * 8)


def test_a_factory_wrapper_is_see_through():
    from effprof.modules.wrap import ModuleWithInputs

    inner = nn.Sequential(nn.Linear(4, 4))
    wrapped = ModuleWithInputs(nn.Sequential(nn.Linear(4, 4)), {})
    assert list(module_paths(wrapped)) == ["", "0"] == list(module_paths(inner))


def test_the_record_carries_one_nested_field_with_the_analytic_cost_at_the_root():
    record = measure_point("mamba", "forward", {"seq_len": 64, "d_model": 32}, QUICK)
    assert record["status"] == "ok"
    tree = record["breakdown"]
    assert not [k for k in record if k.startswith("breakdown_")]  # one field, not dozens of prefixed keys
    assert tree[""]["flops"] == pytest.approx(record["flops_counted"])
    assert tree[""]["flops_analytic"] == record["flops_analytic"]
    assert {"in_proj", "conv", "x_proj", "dt_proj", "out_proj"} <= set(tree)
    json.dumps(record)  # storable as it is


def test_other_modes_carry_no_breakdown():
    record = measure_point("mamba", "train", {"seq_len": 32, "d_model": 32}, QUICK)
    assert "breakdown" not in record


def test_profile_prints_the_tree_with_shares():
    result = runner.invoke(app, ["profile", "softmax_attention", "--breakdown", "--depth", "1", "--seq-len", "32", "--d-model", "32",
                                 "--max-time", "0.02"])
    assert result.exit_code == 0, result.output
    assert "cost per submodule" in result.output and "q_proj" in result.output and "100.0%" in result.output


def test_bad_depth_is_refused():
    result = runner.invoke(app, ["profile", "mamba", "--breakdown", "--depth", "0"])
    assert result.exit_code == 2 and "Traceback" not in result.output


def _synthetic_sweep() -> pd.DataFrame:
    """An attention layer whose core grows as n² and projections as n (exact, so the fits are exact)."""
    rows = []
    for n in (256, 512, 1024, 2048):
        core, proj = 4.0 * n * n * 64, 8.0 * n * 64 * 64
        rows.append({"mechanism": "attn", "mode": "forward", "status": "ok", "seq_len": n, "breakdown": {
            "": {"type": "Attention", "flops": core + proj, "time_s": 1e-9 * (core + proj), "peak_bytes": 4 * n * n},
            "qkv": {"type": "Linear", "flops": proj * 0.75, "time_s": 1e-9 * proj, "peak_bytes": 12 * n * 64},
            "out": {"type": "Linear", "flops": proj * 0.25, "time_s": 1e-9 * proj, "peak_bytes": 4 * n * 64},
        }})
    return pd.DataFrame(rows)


def test_per_module_fits_separate_the_quadratic_core_from_linear_projections():
    fits = {(f["path"], f["metric"]): f for f in fit_breakdown(_synthetic_sweep())}
    assert fits[("qkv", "flops")]["exponent"] == pytest.approx(1.0, abs=1e-6)
    assert fits[("out", "peak_bytes")]["exponent"] == pytest.approx(1.0, abs=1e-6)
    assert fits[("", "peak_bytes")]["exponent"] == pytest.approx(2.0, abs=1e-6)
    assert 1.5 < fits[("", "flops")]["exponent"] < 2.0  # the whole: the core takes over as n grows
    assert fits[(REST, "flops")]["exponent"] == pytest.approx(2.0, abs=1e-6)  # the core: the whole minus the projections


def test_fits_skip_records_without_breakdown_and_failed_points():
    frame = _synthetic_sweep()
    frame.loc[0, "status"] = "error"
    assert {f["sizes"][0] for f in fit_breakdown(frame)} == {512.0}
    assert fit_breakdown(frame.drop(columns="breakdown")) == []
    assert breakdown_frame(pd.DataFrame()).empty


def test_share_figure_stacks_children_and_the_rest_to_the_whole():
    fig = share_figure(_synthetic_sweep(), "attn")
    names = [trace.name.split(" ")[0] for trace in fig.data]
    assert names == ["qkv", "out", REST]
    for i in range(4):
        assert sum(trace.y[i] for trace in fig.data) == pytest.approx(100.0)
    rest = fig.data[-1].y
    assert list(rest) == sorted(rest)  # the attention core's share grows with n
    assert share_figure(_synthetic_sweep(), "nothing") is None


def test_tree_of_a_record_escapes_markup():
    record = {"mechanism": "[bold]x", "breakdown": {"": {"type": "[/x]", "calls": 1, "flops": 10.0, "time_s": 1e-3, "peak_bytes": 8}}}
    table = breakdown_tree(record)
    from rich.console import Console

    console = Console(record=True, width=120)
    console.print(table)
    assert "[/x]" in console.export_text()


@pytest.mark.slow
def test_a_real_sweep_fits_per_module():
    frame = effprof.sweep(["softmax_attention"], vary={"seq_len": [64, 128, 256]}, d_model=32,
                          options=Options(max_time_s=0.01, fvcore=False, roofline=False, memory=False, breakdown=True, breakdown_depth=1))
    fits = {(f["path"], f["metric"]): f["exponent"] for f in fit_breakdown(frame)}
    assert fits[("q_proj", "flops")] == pytest.approx(1.0, abs=0.01)
    assert fits[("", "flops")] > 1.2
    assert fits[(REST, "flops")] > 1.8  # the attention core between the projections
