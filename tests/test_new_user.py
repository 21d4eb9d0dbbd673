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


def test_did_you_mean_for_names_keys_dtypes_modes_metrics_and_hf_targets():
    cases = [
        (["profile", "sofmax_attention"], ["did you mean 'softmax_attention'?"]),
        (["sweep", "softmax_attention", "-v", "seq_lenn=16,32", "-o", "x.jsonl"], ["did you mean 'seq_len'?"]),
        (["profile", "softmax_attention", "--param", "windw=4"], ["did you mean 'window'?"]),
        (["profile", "softmax_attention", "--dtype", "bfloat61"], ["did you mean 'bfloat16'?"]),
        (["profile", "softmax_attention", "--mode", "decod"], ["did you mean 'decode'?"]),
        (["sweep", "--module", "tests.plugins.mylayers:build_quadratic", "--claim", "flop:seq_len=2", "-v", "seq_len=16,32",
          "-o", "x.jsonl"], ["did you mean 'flops'?"]),
        (["profile", "--module", "hf:llama.atention"], ["'hf:llama.atention'", "did you mean 'hf:llama.attention'?"]),
    ]
    for args, fragments in cases:
        result = invoke(*args)
        assert_bad_input(result, *fragments)
        assert "linear_attention" not in result.output or "did you mean 'linear" in result.output  # no list of every name
    far = invoke("profile", "qqqq")  # nothing close: the list, as before
    assert_bad_input(far, "unknown mechanism 'qqqq'", "softmax_attention", "mamba2")


def test_a_module_named_with_a_dot_gets_the_colon_hint_and_hf_quotes_the_whole_target():
    assert_bad_input(invoke("profile", "mylayers.build_gated_conv"), "pkg.module:factory", "did you mean 'mylayers:build_gated_conv'?")
    assert_bad_input(invoke("profile", "--module", "hf:llama.model"), "--module 'hf:llama.model' is not a known layer")
