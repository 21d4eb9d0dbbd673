"""--isolate and module factories (issue 21): the worker sees exactly what the driver sees (spec, claims, params,
plugins), and the first build of a factory runs in the worker under the same limits as its points."""

from __future__ import annotations

import json
import time

import pytest
from typer.testing import CliRunner

import effprof
from effprof.cli import app
from effprof.config import ConfigError
from effprof.executors.local import ProcessExecutor
from effprof.measure.harness import Options

runner = CliRunner()
U = "tests.plugins.user_code"
F = "tests.plugins.factories"
FAST = ["--max-time", "0.02"]



@pytest.mark.slow  # a worker start (torch imported in a fresh process): seconds; the fast tests below cover the parts
def test_isolated_module_points_keep_their_claims_and_build_with_the_users_params(tmp_path):
    """Both failed before: the worker rebuilt the spec without the --claim claims (records carried claims: []) and
    re-probed the factory at its own defaults (n_heads=3 does not divide d_model 128: every point `crash`)."""
    out = tmp_path / "r.jsonl"
    result = runner.invoke(app, ["sweep", "--module", f"{F}:mlp", "--module", f"{U}:heads", "--claim", "flops:seq_len=1",
                                 "--param", f"{U}:heads.n_heads=4", "--param", "d_model=16", "--vary", "seq_len=16,32", "--isolate",
                                 "-o", str(out), *FAST])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 4 and {r["status"] for r in records} == {"ok"}, [r["error"] for r in records]
    assert all(r["claims"] == [["flops", "seq_len", 1.0, 0.0]] for r in records)
    assert {r["n_heads"] for r in records if r["mechanism"] == f"{U}:heads"} == {4}


def test_a_module_definition_registers_without_a_probe():
    """What the worker does with each point's target: the driver's claims and modes, no build at the defaults."""
    from effprof.modules import definition, register_definition, resolve_targets
    from effprof.registry import get_spec, unregister

    (target,) = resolve_targets([], [f"{U}:heads"], ["flops:seq_len=1"], {"n_heads": 4, "d_model": 16})
    made = definition(target)
    assert made == (target, get_spec(target).claims, False)
    unregister(target)
    try:
        spec = register_definition(made)  # at its defaults (d_model 128, n_heads 3) the factory would not build
        assert spec.claims == made[1] and spec.modes == ("forward", "train")
    finally:
        unregister(target)
    assert definition("softmax_attention") is None


@pytest.mark.slow
def test_a_hanging_factory_is_stopped_by_the_timeout_in_one_line(tmp_path):
    """It hung `sweep --isolate --timeout 2` forever: the probe ran in the driver, outside the limits."""
    out = tmp_path / "r.jsonl"
    started = time.monotonic()
    result = runner.invoke(app, ["sweep", "--module", f"{U}:hangs", "--isolate", "--timeout", "2", "--vary", "seq_len=16",
                                 "--param", "d_model=16", "-o", str(out), *FAST])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and "no result within --timeout 2 s" in lines[0], result.output
    assert time.monotonic() - started < 300 and not out.exists()


@pytest.mark.slow
def test_a_segfaulting_factory_is_one_line_not_exit_139(tmp_path):
    out = tmp_path / "r.jsonl"
    result = runner.invoke(app, ["sweep", "--module", f"{U}:segfaults", "--isolate", "--vary", "seq_len=16", "--param", "d_model=16",
                                 "-o", str(out), *FAST])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and "killed by SIGSEGV" in lines[0], result.output


@pytest.mark.slow
def test_the_python_api_probes_in_the_worker_and_the_worker_loads_the_drivers_plugins():
    """effprof.sweep(executor="process"): the factory is built first in the worker with the user's values, and a
    plugin loaded in this process (load_plugin) is loaded there too."""
    from effprof.plugins import load_plugin

    (plugin,) = load_plugin("tests.plugins.short_conv:short_conv")
    quick = Options(max_time_s=0.01, fvcore=False, roofline=False)
    frame = effprof.sweep([plugin, f"{U}:heads"], vary={"seq_len": [16]}, executor="process", options=quick,
                          d_model=16, **{f"{U}:heads.n_heads": 4})
    assert set(frame.status) == {"ok"}, list(frame.error)
    with ProcessExecutor(timeout_s=5) as executor, pytest.raises(ConfigError, match="fails at d_model=128"):
        executor.probe(f"{U}:heads", (), {})  # at the defaults it does not build: refused in one line, from the worker


def test_a_definition_the_worker_cannot_register_is_the_points_error_not_a_dead_worker():
    from effprof.measure.isolate import _register

    assert _register(None) is None
    message = _register(("no_such_package_xyz:factory", (), False))
    assert "cannot register no_such_package_xyz:factory" in message and "cannot import" in message
