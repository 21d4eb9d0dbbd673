"""What a fresh install and a new user meet first: declared dependencies, --version, pipes, aliases."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from effprof import __version__
from effprof.cli import app
from effprof.config import ConfigError, resolve_config
from effprof.registry import get_spec

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_cli_starts_without_click():
    """click is no dependency (current typer vendors its own): the CLI must not import it."""
    code = "import sys; sys.modules['click'] = None\nfrom effprof.cli import app\nprint('ok')"
    result = _run(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_every_import_is_declared():
    tool = ROOT.parent / "shared" / "tools" / "undeclared-imports"
    if not tool.exists():
        pytest.skip(f"{tool} is not beside this checkout")
    result = subprocess.run([sys.executable, str(tool), str(ROOT)], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "", result.stdout


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"effprof {__version__}"


@pytest.mark.parametrize("args", [["explain", "linear_attention"], ["list"], ["list", "--json"]])
def test_broken_pipe_exits_quietly(args):
    """`effprof explain X | head -1` exits 0 with nothing on stderr."""
    command = [sys.executable, "-m", "effprof", *args]
    pipeline = subprocess.run(f"{subprocess.list2cmdline(command)} | head -c 20 >/dev/null; echo ${{PIPESTATUS[0]}}",
                              shell=True, executable="/bin/bash", capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert pipeline.stdout.strip() == "0", pipeline.stderr
    assert "Traceback" not in pipeline.stderr and "error" not in pipeline.stderr.lower()


def test_list_keys_json_has_the_keys():
    plain = json.loads(runner.invoke(app, ["list", "--json"]).output)
    with_keys = json.loads(runner.invoke(app, ["list", "--keys", "--json"]).output)
    assert isinstance(plain, list) and plain[0]["name"]
    assert with_keys["mechanisms"] == plain
    names = {k["name"] for k in with_keys["keys"]}
    assert {"seq_len", "d_model", "impl", "dtype"} <= names
    assert all(k["meaning"] for k in with_keys["keys"])


def test_list_shows_the_default_impl_first():
    output = runner.invoke(app, ["list"], terminal_width=400).output
    spec = get_spec("sliding_window")
    assert spec.impls[0] != spec.defaults["impl"]  # declared with the reference form first: the listing reorders
    row = next(line for line in output.splitlines() if "sliding_window" in line)
    impls = row.split("│")[4].strip().split(", ")
    assert impls[0] == spec.defaults["impl"]
    assert sorted(impls) == sorted(spec.impls)


@pytest.mark.parametrize(("alias", "full"), [("bf16", "bfloat16"), ("fp16", "float16"), ("half", "float16"), ("fp32", "float32")])
def test_dtype_aliases(alias, full):
    assert resolve_config(get_spec("softmax_attention"), {"dtype": alias})["dtype"] == full


def test_unknown_dtype_is_refused_with_the_accepted_names():
    with pytest.raises(ConfigError, match=r"dtype='bf17'.*bfloat16.*bf16"):
        resolve_config(get_spec("softmax_attention"), {"dtype": "bf17"})


@pytest.mark.parametrize("command", ["sweep", "compare", "profile", "report", "check", "fit", "merge"])
def test_help_reads_as_words(command):
    """Metavars are words (KEY=VALUE, SECONDS, N), not Python types (<list[str]>, <float range>, <str>)."""
    text = runner.invoke(app, [command, "--help"], terminal_width=200).output
    assert "Usage" in text
    for python_type in ("<list[str]>", "<float range>", "<str>", "<int range>", "<path>", "<float>", "<int>"):
        assert python_type not in text, f"{command} --help shows {python_type}"
