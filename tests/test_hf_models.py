"""Whole Hugging Face models from their published configs, counted (no weights): the figures agree with the
published formulas (README "Whole models from their configs").

Llama-2-7B (config.json of meta-llama/Llama-2-7b-hf): 6.74 B parameters; a decoded token costs 2 FLOPs per
parameter used in a matmul (every weight but the input embedding, a lookup) plus 4·n_layers·d_model·context
for attention (QKᵀ and PV, 2 FLOPs per multiply-add); the KV cache holds 2·n_layers·d_model values per token,
0.5 MiB in fp16 at batch 1. Prefill: 2·(matmul params)·n plus 2·n_layers·n²·d_model (causal: half the pairs).
"""

from __future__ import annotations

import pytest

pytest.importorskip("transformers")

import effprof  # noqa: E402

D, LAYERS, VOCAB = 4096, 32, 32000
MiB = 2**20


def _llama2_matmul_params(layers: int) -> int:
    per_layer = 4 * D * D + 3 * D * 11008  # q, k, v, o; gate, up, down (norm weights are not matmuls)
    return layers * per_layer + VOCAB * D  # + the LM head


def _check_llama2(layers: int, overrides: dict) -> None:
    kw = dict(count_only=True, **overrides)
    matmul = _llama2_matmul_params(layers)
    params = matmul + VOCAB * D + (2 * layers + 1) * D  # + input embedding + RMSNorm weights
    prefill = effprof.profile("hf:llama-2-7b", seq_len=4096, **kw)
    assert prefill["status"] == "ok", prefill["error"]
    assert prefill["params"] == params
    assert not prefill.get("uncounted_ops")
    n = 4096
    assert prefill["flops_counted"] == pytest.approx(2 * matmul * n + 2 * layers * n * n * D, rel=0.01)
    assert prefill["state_bytes"] / n == 2 * layers * D * 2  # K and V, fp16, per token
    for context in (4096, 32768):
        decode = effprof.profile("hf:llama-2-7b", mode="decode", seq_len=context, gen_len=1, **kw)
        assert decode["status"] == "ok", decode["error"]
        # the token decoded attends to the context and itself: context + 1 keys
        assert decode["flops_counted"] == pytest.approx(2 * matmul + 4 * layers * D * (context + 1), rel=0.01)


def test_llama2_architecture_agrees_with_the_published_formulas_two_layers():
    """The same formulas with two of the 32 layers (fast)."""
    _check_llama2(2, {"n_layers": 2})


@pytest.mark.slow
def test_llama2_7b_agrees_with_the_published_formulas():
    _check_llama2(LAYERS, {})
    record = effprof.profile("hf:llama-2-7b", seq_len=16, count_only=True)
    assert record["params"] == pytest.approx(6.74e9, rel=0.001)
    assert record["state_bytes"] / 16 == 0.5 * MiB


@pytest.mark.slow
def test_mixtral_8x7b_active_parameters():
    """Mixtral-8x7B: about 12.9 B parameters active per token (2 of 8 experts), 46.7 B in all."""
    record = effprof.profile("hf:mixtral-8x7b", mode="decode", seq_len=16, gen_len=1, count_only=True)
    assert record["status"] == "ok", record["error"]
    assert not record.get("uncounted_ops")
    assert record["params"] == pytest.approx(46.7e9, rel=0.01)
    attention = 4 * 32 * D * 17  # QKᵀ and PV of every query head over 17 keys (GQA shares K and V, not the work)
    active = (record["flops_counted"] - attention) / 2 + 32000 * D  # + the input embedding, a lookup
    assert active == pytest.approx(12.9e9, rel=0.01)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["llama", "mistral", "mamba", "mamba2", "mixtral", "jamba"])
@pytest.mark.parametrize("mode", ["forward", "train", "decode"])
def test_every_whole_model_architecture_counts_every_op(name, mode):
    dtype = "bfloat16" if name in ("mixtral", "jamba") else "float32"  # grouped experts: counted in bfloat16
    record = effprof.profile(f"hf:{name}", mode=mode, seq_len=16, gen_len=2, count_only=True, dtype=dtype)
    assert record["status"] == "ok", (name, record["error"])
    assert record["flops_counted"] > 0 and not record.get("uncounted_ops"), name


def test_mixtral_counts_every_op():
    record = effprof.profile("hf:mixtral", seq_len=16, count_only=True, dtype="bfloat16", n_layers=1)
    assert record["status"] == "ok", record["error"]
    assert not record.get("uncounted_ops")
    real = effprof.profile("hf:mixtral", seq_len=16, dtype="bfloat16", n_layers=1, max_time=0.01)
    assert real["flops_counted"] == record["flops_counted"]  # grouped experts: no routing data needed


def test_mixtral_in_float32_is_refused_with_why_when_counting():
    """The first check of the target (on fake tensors, before any point) meets torch's bf16-only fake grouped_mm:
    one line naming the dtype to count with, and nothing measured."""
    from effprof.config import ConfigError

    with pytest.raises(ConfigError, match="count with dtype=bfloat16"):
        effprof.profile("hf:mixtral", seq_len=16, count_only=True, n_layers=1)


def test_min_max_reductions_are_counted():
    """Mixtral's eager router calls aminmax; the class (aminmax, nansum, median, ...) has formulas."""
    import torch

    from effprof.measure.flops import FlopCounter

    x = torch.randn(8, 16)
    with FlopCounter() as counter:
        torch.aminmax(x)
        torch.nansum(x)
        torch.median(x, dim=-1)
    assert not counter.unknown_ops
    assert counter.by_op["aminmax"] == 2 * x.numel() and counter.by_op["nansum"] == x.numel()


def test_the_breakdown_shows_each_layer():
    record = effprof.profile("hf:llama", seq_len=32, count_only=True, breakdown=True)
    paths = set(record["breakdown"])
    assert {"model.model.layers.0", "model.model.layers.1"} <= paths
    assert record["breakdown"]["model.model.layers.0"]["flops"] > 0


def test_an_unknown_model_lists_what_exists():
    from effprof.config import ConfigError

    with pytest.raises(ConfigError, match="did you mean 'hf:llama"):
        effprof.profile("hf:llama-9b", count_only=True)
    with pytest.raises(ConfigError, match="llama-2-7b"):
        effprof.profile("hf:qqqqqqqqqqqqqqq", count_only=True)


def test_layers_of_a_module_list_show_at_their_lists_depth():
    import torch

    from effprof.measure.breakdown import module_paths

    class Stack(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = torch.nn.ModuleList(torch.nn.Sequential(torch.nn.Linear(4, 4)) for _ in range(3))

    paths = module_paths(Stack(), depth=1)
    assert {"layers", "layers.0", "layers.1", "layers.2"} <= set(paths)
    assert "layers.0.0" not in paths  # the Linear inside a layer is one level deeper
