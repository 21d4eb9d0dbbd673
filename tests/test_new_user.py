"""What a new user hit (issue 25), through the command line: one meaning per short flag, hints for near misses,
reports written beside their results, completion, and the list's titles."""

from __future__ import annotations

import typer
from typer.testing import CliRunner

from effprof.cli import app
from tests.test_cli import assert_bad_input

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def _commands(group, prefix: str = ""):
    for name, command in group.commands.items():
        if hasattr(command, "commands"):  # a group of commands
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


def test_list_cuts_paper_titles_at_a_word_with_an_ellipsis():
    from effprof.cli.inspect import TITLE_WIDTH, paper_title
    from effprof.registry import get_spec, list_mechanisms

    titles = [get_spec(n).paper.title for n in list_mechanisms()]
    long = [t for t in titles if len(t) > TITLE_WIDTH]
    assert long  # the registry has titles to cut
    for title in long:
        cut = paper_title(title)
        assert cut.endswith("…") and len(cut) <= TITLE_WIDTH
        kept = cut[:-1]
        assert title.startswith(kept) and title[len(kept)] in " :,;-–"  # ends at a word: "Between A" was mid-title, mid-word
    assert paper_title("Short title") == "Short title"


def test_breakdown_depth_counts_the_layers_of_a_module_list_as_one_level_and_shows_their_paths():
    import io

    import torch
    from rich.console import Console
    from torch import nn

    from effprof.measure.breakdown import measure_breakdown, module_paths
    from effprof.render.breakdown import breakdown_tree

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.self_attn, self.mlp = nn.Linear(4, 4), nn.Sequential(nn.Linear(4, 4), nn.ReLU())

        def forward(self, x):
            return self.mlp(self.self_attn(x))

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed, self.layers = nn.Linear(4, 4), nn.ModuleList([Block(), Block()])

        def forward(self, x):
            x = self.embed(x)
            for layer in self.layers:
                x = layer(x)
            return x

    model = Model()
    assert "layers.0" in module_paths(model, 1)  # hidden at depth 1 before (the list took a level)
    assert "layers.0.self_attn" in module_paths(model, 2) and "layers.0.mlp.0" not in module_paths(model, 2)
    x = torch.randn(1, 3, 4)
    tree = measure_breakdown(model, lambda: model(x), depth=2, repeats=1)
    console = Console(file=io.StringIO(), width=160)
    console.print(breakdown_tree({"mechanism": "model", "breakdown": tree}))
    text = console.file.getvalue()
    assert "  layers.0 " in text and "    self_attn " in text  # the layer by its path, its parts under it
    assert not any(line.split("│")[1].strip() in ("0", "1") for line in text.splitlines() if line.count("│") > 2)


def _complete(words: str) -> list[str]:
    cword = str(len(words.split()) - (0 if words.endswith(" ") else 1))
    result = runner.invoke(app, [], prog_name="effprof",
                           env={"_EFFPROF_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": cword})
    return result.output.split()


def test_completion_is_offered_in_help_and_completes_names_keys_and_hf_targets():
    assert "--install-completion" in invoke("--help").output
    assert _complete("effprof profile sof") == ["softmax_attention"]
    assert _complete("effprof sweep mamba --vary seq_") == ["seq_len="]
    assert _complete("effprof compare --param d_mo") == ["d_model="]
    assert "hf:llama.attention" in _complete("effprof compare --module hf:ll")
    assert _complete("effprof sweep x --mode dec") == ["decode"]
    assert _complete("effprof compare --claim flops:seq") == ["flops:seq_len="]
