"""The command line through Typer's CliRunner: real output, exit codes, one-line errors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from effprof.cli import app
from effprof.registry import list_mechanisms

runner = CliRunner()
FAST = ["--max-time", "0.02"]


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def assert_bad_input(result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    text = result.output.strip()
    assert "Traceback" not in text
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    assert lines[0].startswith("error:")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_list_json_has_every_mechanism():
    result = invoke("list", "--json")
    assert result.exit_code == 0
    specs = json.loads(result.stdout)
    assert [s["name"] for s in specs] == list_mechanisms()
    for s in specs:
        assert {"name", "family", "summary", "paper", "causal", "defaults", "claims"} <= set(s)


def test_list_table_and_keys():
    result = invoke("list", "--keys")
    assert result.exit_code == 0
    assert "softmax_attention" in result.output and "seq_len" in result.output and "feature_map" in result.output


def test_explain_shows_equations_and_claims():
    result = invoke("explain", "linear_attention")
    assert result.exit_code == 0
    assert "φ(q_t)" in result.output and "claims" in result.output


def test_explain_says_whether_the_compiled_kernel_is_in_use(monkeypatch):
    from effprof import kernels

    monkeypatch.setenv("EFFPROF_KERNELS", "0")
    kernels.load.cache_clear()
    try:
        result = invoke("explain", "mamba", "--json")
        assert json.loads(result.stdout)["kernel_status"] == {"selective_scan": "disabled by EFFPROF_KERNELS=0"}
        assert "compiled kernel selective_scan: disabled" in invoke("explain", "mamba").output
    finally:
        kernels.load.cache_clear()


def test_profile_json_counted_matches_analytic_for_sdpa():
    result = invoke("profile", "softmax_attention", "--param", "impl=sdpa", "--seq-len", "128", "--json", *FAST)
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["status"] == "ok"
    assert record["flops_counted"] == pytest.approx(record["flops_analytic"], rel=0.02)


def test_profile_table():
    result = invoke("profile", "linear_attention", "--seq-len", "64", "--mode", "decode", *FAST)
    assert result.exit_code == 0
    assert "state_bytes" in result.output


def test_sweep_then_fit_then_report(tmp_path):
    results = tmp_path / "r.jsonl"
    result = invoke("sweep", "softmax_attention", "linear_attention", "--vary", "seq_len=64,128,256",
                    "--param", "d_model=16", "-o", str(results), *FAST)
    assert result.exit_code == 0, result.output
    assert len(results.read_text().splitlines()) == 6
    fit = invoke("fit", str(results), "--json")
    assert fit.exit_code == 0
    fits = json.loads(fit.stdout)
    assert {"mechanism", "variant", "mode", "metric", "axis", "exponent", "ci_low", "ci_high", "r2", "claimed", "verdict"} <= set(fits[0])
    report = tmp_path / "r.html"
    assert invoke("report", str(results), "-o", str(report)).exit_code == 0
    assert "plotly" in report.read_text().lower()


def test_compare_json(tmp_path):
    out = tmp_path / "c.html"
    result = invoke("compare", "softmax_attention", "linear_attention", "--vary", "seq_len=64,128,256,512",
                    "--param", "d_model=16", "-o", str(out), "--json", *FAST)  # 4 sizes: 3 cannot judge a·n² + b·n
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) == {"records", "fits", "report", "crossovers"}
    assert len(data["records"]) == 16 and data["report"] == str(out)  # forward and decode by default
    assert {r["mode"] for r in data["records"]} == {"forward", "decode"}
    assert {(c["a"], c["b"]) for c in data["crossovers"]} == {("softmax_attention", "linear_attention")}
    assert out.exists() and out.with_suffix(".jsonl").exists()
    verdicts = {(f["mechanism"], f["mode"], f["metric"]): f["verdict"] for f in data["fits"]}
    assert verdicts[("softmax_attention", "forward", "flops")] == "pass"
    assert verdicts[("linear_attention", "forward", "flops")] == "pass"
    assert verdicts[("linear_attention", "decode", "flops")] == "pass"  # O(1) per token


def test_compare_against_a_baseline_file_and_exports(tmp_path):
    out, tex, csv = tmp_path / "c.html", tmp_path / "t.tex", tmp_path / "r.csv"
    args = ["compare", "linear_attention", "--vary", "seq_len=32,64,128", "--param", "d_model=16", "--mode", "forward", *FAST]
    assert invoke(*args, "-o", str(tmp_path / "old.html")).exit_code == 0
    result = invoke(*args, "-o", str(out), "--baseline", str(tmp_path / "old.jsonl"), "--latex", str(tex), "--csv", str(csv), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    flops = [b for b in data["baseline"] if b["metric"] == "flops_counted"]
    assert len(flops) == 3 and all(b["change"] == "same" and b["ratio"] == pytest.approx(1.0) for b in flops)
    assert "Baseline comparison" in out.read_text()
    text = tex.read_text()
    assert "\\toprule" in text and "\\num{" in text and "linear\\_attention" in text
    assert csv.exists() and (tmp_path / "r_fits.csv").exists()


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["profile", "nope"], ["'nope'", "softmax_attention"]),
        (["profile", "softmax_attention", "--param", "impl=fast"], ["impl='fast'", "naive"]),
        (["profile", "softmax_attention", "--param", "window=4"], ["'window'", "accepted"]),
        (["profile", "softmax_attention", "--param", "bogus=4"], ["'bogus'", "config key"]),
        (["profile", "softmax_attention", "--param", "impl"], ["key=value"]),
        (["profile", "softmax_attention", "--param", "n_heads=3"], ["d_model=128", "n_heads=3"]),
        (["profile", "softmax_attention", "--seq-len", "0"], ["seq_len=0", "positive"]),
        (["profile", "softmax_attention", "--seq-len", "abc"], ["abc"]),
        (["profile", "softmax_attention", "--mode", "fly"], ["'fly'", "forward"]),
        (["profile", "softmax_attention", "--dtype", "float8"], ["float8", "float32"]),
        (["profile", "softmax_attention", "--device", "tpu"], ["tpu", "cpu"]),
        (["sweep", "softmax_attention", "-o", "x.jsonl"], ["--vary"]),
        (["sweep", "softmax_attention", "--vary", "seq_len=", "-o", "x.jsonl"], ["seq_len", "no values"]),
        (["sweep", "softmax_attention", "--vary", "seq_len=1,x", "-o", "x.jsonl"], ["'x'"]),
        (["fit", "/nonexistent/r.jsonl"], ["does not exist"]),
        (["report", "/nonexistent/r.jsonl", "-o", "r.html"], ["does not exist"]),
        (["compare", "softmax_attention", "-o", "r.txt"], [".html"]),
        (["list", "--family", "nope"], ["'nope'", "attention"]),
        (["explain", "nope"], ["'nope'"]),
        (["frobnicate"], ["frobnicate"]),
        (["profile", "softmax_attention", "--bogus-flag"], ["--bogus-flag"]),
    ],
)
def test_bad_input_is_one_line_exit_2(args, fragments, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert_bad_input(invoke(*args), *fragments)
    assert not (tmp_path / "x.jsonl").exists()


def test_corrupt_results_line_is_skipped_with_a_warning(tmp_path):
    results = tmp_path / "r.jsonl"
    assert invoke("sweep", "linear_attention", "--vary", "seq_len=32,64,128", "--param", "d_model=16", "-o", str(results), *FAST).exit_code == 0
    with results.open("a") as f:
        f.write('{"mechanism": "linear_att')  # a line cut short by a crash
    result = invoke("fit", str(results))
    assert result.exit_code == 0
    assert "r.jsonl:4" in result.output and "skipped" in result.output


def test_python_module_entry_point():
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "effprof", "list", "--json"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and json.loads(done.stdout)


def test_patterns_command(tmp_path):
    out = tmp_path / "p.html"
    result = invoke("patterns", "sliding_window", "--param", "window=16", "--seq-len", "512", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "density" in result.output and out.exists()
    assert_bad_input(invoke("patterns", "softmax_attention", "-o", str(out)), "no attention pattern")
