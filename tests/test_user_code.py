"""User code (module factories, plugins) cannot reach past itself (issue 21): torch's global state it changes is put
back and named, sys.exit is an error, claims it cannot be judged on are refused, records it would make unreadable are
caught by `validate`, and modules are probed at the user's dtype."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from typer.testing import CliRunner

from effprof.cli import app
from effprof.measure.harness import Options, measure_point
from effprof.modules import resolve_targets

runner = CliRunner()
U = "tests.plugins.user_code"
F = "tests.plugins.factories"
QUICK = Options(max_time_s=0.01, fvcore=False, roofline=False)


def _one_line_error(result, fragment: str) -> None:
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and fragment in lines[0], result.output
    assert "Traceback" not in result.output



def test_a_factory_that_switches_autograd_off_no_longer_breaks_other_mechanisms_train_points():
    """It turned every later train point (of any mechanism) into an error."""
    (target,) = resolve_targets([], [f"{U}:grad_off"], [], {"d_model": 16})
    record = measure_point(target, "train", {"seq_len": 16, "d_model": 16}, QUICK)
    assert torch.is_grad_enabled()
    assert record["status"] == "ok", record["error"]  # put back after the build: its own train point measures too
    assert record["warnings"] == ["user code changed torch's grad mode (torch.set_grad_enabled) from True to False; restored"]
    other = measure_point("softmax_attention", "train", {"seq_len": 16, "d_model": 16}, QUICK)
    assert other["status"] == "ok" and "warnings" not in other


def test_threads_and_default_dtype_are_put_back_and_named():
    threads = torch.get_num_threads()
    (target,) = resolve_targets([], [f"{U}:one_thread"], [], {"d_model": 16})
    record = measure_point(target, "forward", {"seq_len": 16, "d_model": 16}, QUICK)
    assert torch.get_num_threads() == threads and torch.get_default_dtype() == torch.float32
    assert record["status"] == "ok" and len(record["warnings"]) == 2
    assert any("threads (torch.set_num_threads) from " in w for w in record["warnings"])


def test_every_guarded_setting_is_put_back():
    """Each setting of TORCH_STATE, flipped inside the guard, is restored and named: the table is not a list of names."""
    from effprof.runtime.guard import TORCH_STATE, torch_state, user_code

    before = torch_state()
    flips = {"grad mode": lambda: torch.set_grad_enabled(False), "threads": lambda: torch.set_num_threads(1 + (before[1] == 1)),
             "default dtype": lambda: torch.set_default_dtype(torch.float64),
             "deterministic": lambda: torch.use_deterministic_algorithms(True, warn_only=True),
             "anomaly": lambda: torch.set_anomaly_enabled(True), "matmul precision": lambda: torch.set_float32_matmul_precision("medium"),
             "warn always": lambda: torch.set_warn_always(True), "cudnn.benchmark": lambda: setattr(torch.backends.cudnn, "benchmark", True),
             "mkldnn.enabled": lambda: setattr(torch.backends.mkldnn, "enabled", False)}
    for what, flip in flips.items():
        changes: list[str] = []
        with user_code(changes):
            flip()
        assert torch_state() == before, what
        assert len(changes) == 1 and what in changes[0], (what, changes)
    assert len(TORCH_STATE) >= len(flips)


def test_exit_from_user_code_is_an_exception_but_an_interrupt_is_not():
    from effprof.runtime.guard import UserExit, user_code

    with pytest.raises(UserExit, match=r"sys.exit\(0\)"):
        with user_code():
            raise SystemExit(0)
    with pytest.raises(KeyboardInterrupt):
        with user_code():
            raise KeyboardInterrupt


def test_a_factory_that_calls_sys_exit_is_an_error_not_a_silent_success():
    """profile exited 0 having measured nothing (argparse's --help in a factory)."""
    _one_line_error(runner.invoke(app, ["profile", "--module", f"{U}:exits", "--seq-len", "16"]), "called sys.exit(0)")


def test_a_plugin_that_calls_sys_exit_fails_validate():
    result = runner.invoke(app, ["validate", f"{U}:exit_builder", "--json"])
    assert result.exit_code == 1, result.output
    (report,) = json.loads(result.stdout)
    failed = [c for c in report["checks"] if not c["passed"]]
    assert failed and "called sys.exit(0)" in failed[0]["detail"]


def test_sys_exit_inside_a_measured_point_is_an_error_record(monkeypatch):
    from tests.plugins import user_code as plugins

    (target,) = resolve_targets([], [f"{U}:linear"], [], {"d_model": 16})
    from effprof import registry

    exiting = dataclasses.replace(registry.get_spec(target), builder=lambda config: plugins.exits(config["d_model"]))
    monkeypatch.setitem(registry._REGISTRY, target, exiting)  # the spec is frozen: a changed one in its place
    record = measure_point(target, "forward", {"seq_len": 16, "d_model": 16}, QUICK)
    assert record["status"] == "error" and "called sys.exit(0)" in record["error"]


@pytest.mark.parametrize("attr, fragment", [("flops_as_text", 'flops_analytic is "'), ("complexity_numbers", "complexity is")])
def test_the_records_check_fails_a_record_no_command_can_read(attr, fragment):
    from effprof.config import resolve_config
    from effprof.contract import TINY, records_problem
    from effprof.registry import add, unregister
    from tests.plugins import user_code as plugins
    from tests.plugins.short_conv import short_conv_cost

    spec = getattr(plugins, attr)
    add(spec)
    try:
        assert fragment in records_problem(spec, resolve_config(spec, TINY), "forward")
    finally:
        unregister(spec.name)
    good = dataclasses.replace(spec, name=f"{attr}_fixed", cost=short_conv_cost, complexity={})
    add(good)
    try:
        assert records_problem(good, resolve_config(good, TINY), "forward") == ""  # the same plugin, fixed, passes
    finally:
        unregister(good.name)


@pytest.mark.slow
@pytest.mark.parametrize("attr, fragment", [
    ("flops_as_text", 'flops_analytic is "'),
    ("complexity_numbers", "complexity is"),
])
def test_validate_fails_a_plugin_whose_records_no_command_can_read(attr, fragment):
    """A cost model giving FLOPs as text passed 11 of 11, then fit skipped every record."""
    result = runner.invoke(app, ["validate", f"{U}:{attr}", "--json"])
    assert result.exit_code == 1, result.output
    (report,) = json.loads(result.stdout)
    failed = {c["name"]: c["detail"] for c in report["checks"] if not c["passed"]}
    for mode in ("forward", "train", "decode"):
        assert fragment in failed[f"records: the {mode} record passes the record schema"]


def test_flops_as_text_is_refused_when_the_plugin_loads():
    _one_line_error(runner.invoke(app, ["--plugin", f"{U}:flops_as_text", "list"]), "cost model gives flops='")


@pytest.mark.slow
def test_validate_names_a_plugin_that_changes_torch_state():
    result = runner.invoke(app, ["validate", f"{U}:grad_off_builder", "--json"])
    assert result.exit_code == 1 and torch.is_grad_enabled()
    (report,) = json.loads(result.stdout)
    assert [c["name"] for c in report["checks"] if not c["passed"]] == ["torch state: leaves torch's global settings as they were"]


@pytest.mark.parametrize("claim", ["flops:seq_len=1@decode", "time:seq_len=1@decode"])
def test_a_claim_in_a_mode_the_module_cannot_run_is_refused(claim):
    """It was accepted and never judged (no decode record is ever made for a module without decode)."""
    _one_line_error(runner.invoke(app, ["profile", "--module", f"{F}:mlp", "--claim", claim, "--seq-len", "16"]),
                    "mode 'decode' is not available for tests.plugins.factories:mlp")


def test_a_decode_claim_on_a_module_that_decodes_is_kept():
    (target,) = resolve_targets([], [f"{F}:short_conv"], ["flops:seq_len=1@decode"], {"d_model": 16})
    from effprof.registry import get_spec

    assert any(c.mode == "decode" for c in get_spec(target).claims)


@pytest.mark.parametrize("factory, dtype", [("mlp", "bfloat16"), ("mlp", "float16"), ("masked_attention", "bfloat16")])
def test_modules_are_probed_at_the_users_dtype(factory, dtype):
    """Every --module was refused with --dtype bfloat16 or float16: the probe fed a float32 input."""
    result = runner.invoke(app, ["profile", "--module", f"{F}:{factory}", "--dtype", dtype, "--seq-len", "16", "--d-model", "16",
                                 "--json", "--max-time", "0.01"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["status"] == "ok" and record["dtype"] == dtype


def test_a_module_that_decodes_keeps_decode_at_low_precision():
    result = runner.invoke(app, ["profile", "--module", f"{F}:short_conv", "--dtype", "bfloat16", "--mode", "decode",
                                 "--seq-len", "16", "--d-model", "16", "--json", "--max-time", "0.01"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["status"] == "ok"
