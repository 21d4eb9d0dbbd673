"""Your own module in CI (issue 25): `effprof check` and `assert_scaling` take --module targets (pkg.mod:factory,
hf:) with no analytic cost model; claims scoped per target; a plugin's own config keys and Cost(flops=None)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from effprof.check import load_checks, make_check, run_check
from effprof.cli import app
from effprof.config import ConfigError
from effprof.modules import resolve_targets
from effprof.pytest_plugin import assert_scaling
from effprof.registry import get_spec, unregister
from tests.test_cli import assert_bad_input

runner = CliRunner()
LAYERS = "tests.plugins.mylayers"
CONV, QUAD = f"{LAYERS}:build_gated_conv", f"{LAYERS}:build_quadratic"
PLUGIN = "tests.plugins.counted_conv:build_counted_conv"
SIZES = "[16, 32, 64, 128]"


def _claim(mechanism: str, exponent: float, params: str = "{ d_model = 8 }", axis: str = "seq_len") -> str:
    return (f'[[claims]]\nmechanism = "{mechanism}"\nparams = {params}\naxis = "{axis}"\nvalues = {SIZES}\n'
            f'metric = "flops"\nexponent = {exponent}\n')


@pytest.fixture(autouse=True)
def _clean_registry():
    yield
    for name in (CONV, QUAD, "counted_conv"):
        unregister(name)


def test_check_file_gates_module_targets_with_counted_flops_only(tmp_path):
    path = tmp_path / "checks.toml"
    path.write_text(_claim(CONV, 1.0, "{ d_model = 8, kernel = 3 }") + _claim(QUAD, 2.0))
    suite = load_checks(path)  # this said "unknown mechanism" before
    assert [c.mechanism for c in suite.checks] == [CONV, QUAD] and suite.checks[0].params["kernel"] == 3
    result = runner.invoke(app, ["check", str(path)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "2 of 2 checks hold" in result.stderr
    wrong = tmp_path / "wrong.toml"
    wrong.write_text(_claim(QUAD, 1.0))  # the quadratic layer claimed linear: the gate fails
    failed = runner.invoke(app, ["check", str(wrong)], catch_exceptions=False)
    assert failed.exit_code == 1 and "FAILED" in failed.stderr and "claimed 1" in failed.stderr


def test_assert_scaling_takes_a_module_target():
    fit = assert_scaling(QUAD, axis="seq_len", values=[16, 32, 64, 128], metric="flops", exponent=2.0, d_model=8)
    assert fit["leading_exponent"] == pytest.approx(2.0, abs=0.05)
    with pytest.raises(AssertionError, match="claimed 1"):
        assert_scaling(QUAD, axis="seq_len", values=[16, 32, 64, 128], metric="flops", exponent=1.0, d_model=8)
    with pytest.raises(ConfigError, match="not a known layer"):
        make_check("hf:llama.nothing", "seq_len", [16, 32, 64, 128], "flops", 2.0)


def test_claims_are_scoped_per_target():
    resolve_targets([CONV, QUAD], [], [f"{CONV}.flops:seq_len=1", f"{QUAD}.flops:seq_len=2", "peak_bytes:seq_len=1"], {"d_model": "8"})
    conv, quad = get_spec(CONV).claims, get_spec(QUAD).claims
    assert [(c.metric, c.exponent) for c in conv] == [("flops", 1.0), ("peak_bytes", 1.0)]  # unscoped claims apply to both
    assert [(c.metric, c.exponent) for c in quad] == [("flops", 2.0), ("peak_bytes", 1.0)]
    result = runner.invoke(app, ["sweep", "--module", CONV, "--claim", "nosuch:f.flops:seq_len=1", "-v", "seq_len=16,32", "-o", "x.jsonl"])
    assert_bad_input(result, "'nosuch:f'", "not a --module target here", CONV)


def test_plugin_own_keys_and_no_cost_model_in_check_and_validate(tmp_path):
    path = tmp_path / "checks.toml"
    path.write_text(_claim("counted_conv", 1.0, "{ d_model = 8, kernel = 3 }"))
    result = runner.invoke(app, ["--plugin", PLUGIN, "check", str(path)], catch_exceptions=False)
    assert result.exit_code == 0, result.output  # `kernel` was "not a config key" and Cost(None) failed the load
    validated = runner.invoke(app, ["validate", PLUGIN], catch_exceptions=False)
    assert validated.exit_code == 0, validated.output
    assert "no analytic model" in validated.output and "kernel: settable without declaring" in validated.output
    # as an axis the undeclared key is refused, saying plainly what is missing
    path.write_text(_claim("counted_conv", 1.0, axis="kernel"))
    bad = runner.invoke(app, ["--plugin", PLUGIN, "check", str(path)], catch_exceptions=False)
    assert_bad_input(bad, "own key", "declare_key('kernel'")


def test_a_module_check_measures_counted_flops():
    check = make_check(CONV, "seq_len", [16, 32, 64, 128], "flops", 1.0, params={"d_model": 8})
    result = run_check(check)
    assert result.verdict == "pass"
    assert all(r["flops_analytic"] is None and r["flops_counted"] > 0 for r in result.records)
