"""Plugin mechanisms: loaded only when named, validated against the contract."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from effprof.cli import app
from effprof.registry import list_mechanisms, unregister

runner = CliRunner()
PLUGIN = "tests.plugins.short_conv"
BAD = ("step_off", "cost_2x", "decode_cost_not_per_token", "claim_metric", "claim_axis", "claim_exponent", "claim_mode", "claim_tuple")


@pytest.fixture(autouse=True)
def _clean_registry():
    yield
    for name in ("short_conv", "acausal_conv", "wrong_shape_conv", "no_cost_conv", "my_mixer", *BAD):
        unregister(name)


def test_not_loaded_unless_named():
    """Importing a plugin module registers nothing (in a fresh process: other tests load plugins into this one)."""
    import subprocess
    import sys

    code = ("import tests.plugins.short_conv\nfrom effprof.registry import list_mechanisms\n"
            "assert 'short_conv' not in list_mechanisms(), 'importing registered it'\nprint('ok')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


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
        ("wrong_shape_conv", "forward returned (2, 23, 32)"),
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


def _one_line_error(result, fragment: str) -> None:
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and fragment in lines[0], result.output


def test_plugin_option_after_the_command():
    result = runner.invoke(app, ["list", "--plugin", f"{PLUGIN}:short_conv", "--json"])
    assert result.exit_code == 0, result.output
    assert "short_conv" in {spec["name"] for spec in json.loads(result.stdout)}


def test_hoisting_keeps_everything_after_a_double_dash():
    from effprof.cli import hoist_plugins

    assert hoist_plugins(["list", "--plugin", "a:b", "--plugin=c:d", "--json"]) == ["--plugin", "a:b", "--plugin=c:d", "list", "--json"]
    assert hoist_plugins(["x", "--", "--plugin", "a:b"]) == ["x", "--", "--plugin", "a:b"]


@pytest.mark.parametrize(
    "attr, fragment",
    [
        ("builtin_named", "'softmax_attention' is named like an already registered mechanism"),
        ("empty_name", "plugin mechanism name '' is not accepted"),
        ("escape_name", "is not accepted; a name is a letter"),
        ("claim_metric", "names metric 'speed'; accepted: flops"),
        ("claim_axis", "names axis 'colour', which is not a numeric config key"),
        ("claim_exponent", "has exponent nan; accepted: a finite number"),
        ("claim_mode", "has mode 'sideways'; accepted: forward, train, decode"),
        ("claim_tuple", "is not an effprof.registry.Claim"),
        ("step_off", "prefill of 19 tokens then 5 steps disagrees with forward"),
    ],
)
def test_bad_specs_are_refused_in_one_line(attr, fragment):
    from effprof.registry import get_spec

    before = get_spec("softmax_attention")
    _one_line_error(runner.invoke(app, ["--plugin", f"tests.plugins.bad:{attr}", "list"]), fragment)
    assert get_spec("softmax_attention") is before  # the built-in is untouched
    assert attr not in list_mechanisms()


@pytest.mark.parametrize(
    "attr, failing",
    [
        ("cost_2x", {"flops: counted = analytic in forward (±2%)", "flops: counted = analytic in train (±2%)",
                     "decode: cost per generated token = counted"}),
        ("decode_cost_not_per_token", {"decode: cost per generated token = counted"}),
        ("step_off", {"decode: prefill + steps = forward", "decode: init_state + steps = forward"}),
    ],
)
def test_validate_reports_what_fails(attr, failing):
    result = runner.invoke(app, ["validate", f"tests.plugins.bad:{attr}", "--json"])
    assert result.exit_code == 1, result.output
    (report,) = json.loads(result.stdout)
    assert {c["name"] for c in report["checks"] if not c["passed"]} == failing
    assert all(c["detail"] for c in report["checks"] if not c["passed"])


def test_validate_points_a_prefill_cost_for_decode_at_the_per_token_rule():
    result = runner.invoke(app, ["validate", "tests.plugins.bad:decode_cost_not_per_token"])
    assert result.exit_code == 1
    assert "decode cost is per generated token" in " ".join(result.output.split())


def test_readme_template_passes_every_check_and_profiles_decode_per_token():
    result = runner.invoke(app, ["validate", "tests.plugins.my_mixer:build_my_mixer", "--json"])
    assert result.exit_code == 0, result.output
    (report,) = json.loads(result.stdout)
    assert len(report["checks"]) == 15 and all(c["passed"] for c in report["checks"])
    result = runner.invoke(app, ["profile", "my_mixer", "--plugin", "tests.plugins.my_mixer:build_my_mixer", "--mode", "decode",
                                 "--seq-len", "64", "--json", "--max-time", "0.02"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["flops_counted"] == pytest.approx(record["flops_analytic"], rel=0.02)


def test_pyproject_plugins_load_for_the_commands_that_build_mechanisms(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text(f"""
[tool.effprof]
plugins = ["{PLUGIN}:short_conv"]

[[tool.effprof.check.claims]]
name = "short conv is linear"
mechanism = "short_conv"
axis = "seq_len"
values = [32, 64, 128]
metric = "flops"
exponent = 1.0
tolerance = 0.1
""")
    unregister("short_conv")  # another test file may have loaded it into this process
    result = runner.invoke(app, ["list", "--json"])  # read, not imported: a note says how to list them
    assert result.exit_code == 0 and "short_conv" not in result.stdout, result.output
    assert f"names plugins ({PLUGIN}:short_conv)" in result.stderr and "--plugin" in result.stderr
    result = runner.invoke(app, ["check"])
    assert result.exit_code == 0, result.output
    assert f"loading plugins from ./pyproject.toml: {PLUGIN}:short_conv" in result.stderr


PLANTED = """
import pathlib
pathlib.Path({marker!r}).write_text("imported")  # what a cloned repository's code could do instead
from tests.plugins.short_conv import short_conv
"""


def test_a_cloned_repositorys_plugins_run_only_where_mechanisms_are_built(tmp_path, monkeypatch):
    """A pyproject.toml planted in a folder: reading results, listing, explaining and any --help run none of its
    code; a command that builds mechanisms runs it and says so on stderr."""
    import sys
    import uuid

    from effprof.store.synthetic import write

    module = f"planted_{uuid.uuid4().hex[:8]}"
    marker = tmp_path / "MARKER"
    (tmp_path / f"{module}.py").write_text(PLANTED.format(marker=str(marker)))
    (tmp_path / "pyproject.toml").write_text(f'[tool.effprof]\nplugins = ["{module}:short_conv"]\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    write(tmp_path / "r.jsonl", series=2, sizes=3)
    for args in (["fit", "r.jsonl"], ["report", "r.jsonl", "-o", "r.html"], ["merge", "r.jsonl", "-o", "m.jsonl"], ["list"],
                 ["explain", "softmax_attention"], ["fit", "--help"], ["report", "--help"], ["sweep", "--help"],
                 ["compare", "--help"], ["profile", "--help"], ["check", "--help"], ["validate", "--help"], ["--help"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, (args, result.output)
        assert not marker.exists() and module not in sys.modules, f"effprof {' '.join(args)} ran the planted plugin"
        assert "loading plugins" not in result.output
    result = runner.invoke(app, ["profile", "short_conv", "--seq-len", "32", "--max-time", "0.01", "--json"])
    try:
        assert result.exit_code == 0, result.output
        assert marker.exists()
        assert result.stderr.count(f"loading plugins from ./pyproject.toml: {module}:short_conv") == 1
    finally:
        sys.modules.pop(module, None)


@pytest.mark.parametrize("value, fragment", [('"x:y"', "must be a list"), ('[""]', "must be a list"), ("[1", "cannot read")])
def test_bad_pyproject_plugins_are_one_line_errors(tmp_path, monkeypatch, value, fragment):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text(f"[tool.effprof]\nplugins = {value}\n")
    _one_line_error(runner.invoke(app, ["list"]), fragment)


def test_a_pyproject_without_effprof_is_not_read(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text("this is [not toml")
    assert runner.invoke(app, ["list", "--json"]).exit_code == 0


def test_loading_and_the_contract_are_two_modules():
    """effprof.plugins loads (and builds nothing); effprof.contract checks. Loading a plugin without a check never
    imports the contract (nor the measurement it runs); a check passed in refuses a plugin that breaks it."""
    import subprocess
    import sys

    code = ("import sys, effprof.plugins as p; p.load_plugin('tests.plugins.short_conv:short_conv');"
            "print(sorted(m for m in ('effprof.contract', 'effprof.measure.harness') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stderr

    import effprof.contract as contract
    import effprof.plugins as plugins
    from effprof.registry import list_mechanisms

    assert not hasattr(plugins, "CheckResult") and not hasattr(plugins, "contract_checks") and not hasattr(plugins, "TINY")
    with pytest.raises(plugins.PluginError, match="disagrees with forward"):
        plugins.load_plugin("tests.plugins.bad:step_off", check=contract.validate)
    assert "step_off" not in list_mechanisms()  # refused, so not registered


def test_a_plugin_named_twice_is_loaded_and_checked_once(monkeypatch):
    """pyproject.toml and --plugin may both name a target: it was imported, registered and contract-checked twice."""
    from effprof import plugins

    calls = []
    names = plugins.load_plugin(f"{PLUGIN}:short_conv", check=calls.append)
    again = plugins.load_plugin(f"{PLUGIN}:short_conv", check=calls.append)
    assert names == again and len(calls) == len(names) >= 1


def test_one_causality_check_refuses_a_module_that_reads_ahead():
    """mechanisms.base.is_causal is the probe's and the contract's one check: a running mean passes, a module that
    mixes in the next token fails (in float32 and in bfloat16, within each dtype's rounding)."""
    import torch

    from effprof.contract import _causal_problem
    from effprof.mechanisms.base import is_causal

    class RunningMean(torch.nn.Module):
        def forward(self, x):
            return x.cumsum(1) / torch.arange(1, x.shape[1] + 1, dtype=x.dtype)[None, :, None]

    class ReadsAhead(torch.nn.Module):
        def forward(self, x):
            return x + torch.roll(x, shifts=-1, dims=1)  # token t sees t + 1

    for dtype in (torch.float32, torch.bfloat16):
        x = torch.randn(2, 16, 8).to(dtype)
        assert is_causal(RunningMean(), x) and not is_causal(ReadsAhead(), x)
    assert _causal_problem(RunningMean(), x) == ""
    assert "depend on tokens after t" in _causal_problem(ReadsAhead(), x)


def test_a_plugin_whose_import_fails_is_one_line(tmp_path, monkeypatch):
    """--plugin and --module import their target one way (plugins.import_attr): a multi-line import error reached the
    --plugin message as it was raised."""
    from effprof import plugins

    (tmp_path / "badplugin_mod.py").write_text("raise ValueError('first line\\nsecond line')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(plugins.PluginError) as caught:
        plugins.load_plugin("badplugin_mod:thing")
    assert "\n" not in str(caught.value) and "cannot import 'badplugin_mod': ValueError: first line second line" in str(caught.value)
