"""What a new user hit (issue 25), through the command line: one meaning per short flag, hints for near misses,
reports written beside their results, completion, and the list's titles."""

from __future__ import annotations

import click
import typer
from typer.testing import CliRunner

from effprof.cli import app
from tests.test_cli import assert_bad_input

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def _commands(group: click.Group, prefix: str = ""):
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _commands(command, f"{prefix}{name} ")
        else:
            yield f"{prefix}{name}", command


def test_v_means_vary_in_every_command():
    group = typer.main.get_command(app)
    meanings = {}
    for name, command in _commands(group):
        for param in command.params:
            if "-v" in getattr(param, "opts", ()):
                meanings[name] = param.name
    assert meanings and set(meanings.values()) == {"vary"}, meanings
    # compare's -v is --vary (it read "-v seq_len=…" as a mechanism name), and --verbose is still there
    assert_bad_input(invoke("compare", "softmax_attention", "-v", "seq_lenn=128,256"), "--vary 'seq_lenn' is not a config key")
    assert "--verbose" in invoke("compare", "--help").output
