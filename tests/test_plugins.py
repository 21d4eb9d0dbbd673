"""Plugin mechanisms: loaded only when named, validated against the contract."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from effprof.cli import app
from effprof.registry import list_mechanisms, unregister

runner = CliRunner()
PLUGIN = "tests.plugins.short_conv"


@pytest.fixture(autouse=True)
def _clean_registry():
    yield
    for name in ("short_conv", "acausal_conv", "wrong_shape_conv", "no_cost_conv"):
        unregister(name)


def test_not_loaded_unless_named():
    import tests.plugins.short_conv  # noqa: F401  importing registers nothing

    assert "short_conv" not in list_mechanisms()


def test_valid_plugin_is_listed_and_profiled():
    result = runner.invoke(app, ["--plugin", f"{PLUGIN}:short_conv", "profile", "short_conv", "--seq-len", "64", "--json", "--max-time", "0.02"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["mechanism"] == "short_conv" and record["status"] == "ok"
    assert record["flops_counted"] == pytest.approx(record["flops_analytic"], rel=0.02)


@pytest.mark.parametrize(
    "attr, fragment",
    [
        ("acausal_conv", "declares causal=True"),
        ("wrong_shape_conv", "forward returned (1, 11, 16)"),
        ("no_cost_conv", "no cost model"),
        ("nothing_here", "has no attribute 'nothing_here'"),
    ],
)
def test_contract_violations_are_one_line_errors(attr, fragment):
    result = runner.invoke(app, ["--plugin", f"{PLUGIN}:{attr}", "list"])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and fragment in lines[0], result.output
    assert attr not in list_mechanisms()


def test_unknown_module_and_entry_point():
    for target in ("no_such_module_xyz:thing", "no-such-entry-point"):
        result = runner.invoke(app, ["--plugin", target, "list"])
        assert result.exit_code == 2 and "Traceback" not in result.output
