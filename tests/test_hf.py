"""Hugging Face layers as modules, and effprof's mechanisms cross-checked against them at equal configuration.

Skipped only when transformers (the `hf` extra) is absent. The layers are built once per
module (transformers' import takes seconds) at small sizes.
"""

from __future__ import annotations

import pytest

pytest.importorskip("transformers")

from effprof.config import ConfigError
from effprof.cost_model import SOFTMAX_FLOPS
from effprof.measure.crosscheck import crosscheck
from effprof.modules import module_spec
from effprof.modules.hf import LAYERS

N, D = 64, 64


@pytest.fixture(scope="module")
def rows() -> dict[tuple[str, str], dict]:
    return {(r["effprof"], r["effprof_config"].get("impl", "")): r for r in crosscheck(seq_len=N, d_model=D)}


@pytest.mark.parametrize("layer", list(LAYERS))
def test_every_layer_builds_and_runs(layer):
    spec = module_spec(f"hf:{layer}")
    assert spec.family == "huggingface" and spec.modes == ("forward", "train")  # no step contract: no decode
    assert spec.cost({}, "forward").flops is None  # no analytic model: unknown, never 0


def test_unknown_layer_suggests_a_near_one_and_lists_them_otherwise():
    with pytest.raises(ConfigError, match="did you mean 'hf:llama"):
        module_spec("hf:llama.nothing")
    with pytest.raises(ConfigError, match="accepted: hf:llama.attention"):
        module_spec("hf:qqqqqqqqqqqqqqq")


def test_shapes_and_parameter_counts_match(rows):
    for (name, _), r in rows.items():
        assert r["shape_effprof"] == r["shape_hf"] == (1, N, D)
        # effprof's MoE router has a bias (W_g, b_g as in Switch); Mixtral's gate has none
        bias = 8 if name == "moe_topk" else 0
        assert r["params_effprof"] == r["params_hf"] + bias, name


def test_shared_projections_count_the_same_flops(rows):
    for (name, _), r in rows.items():
        if name == "moe_topk":
            continue  # experts are batched weights, not Linear submodules: checked below
        assert r["shared_projections"], name
        assert r["projection_flops_effprof"] == r["projection_flops_hf"] > 0, name


def test_convolution_differs_only_by_padding_and_bias(rows):
    """transformers: nn.Conv1d over n+k-1 positions plus a bias add; effprof: k causal taps from the bias."""
    k = 4
    for key, channels in ((("mamba", "sequential"), 2 * D), (("mamba2", "chunked"), 2 * D + 2 * 16)):
        r = rows[key]
        assert r["conv_flops_effprof"] == 2 * k * channels * N
        assert r["conv_flops_hf"] == (2 * k + 1) * channels * (N + k - 1)


def test_llama_attention_differs_by_rotary_embeddings_only(rows):
    """q·cos + rotate_half(q)·sin on q and k: 2 mul + 1 add + a negation of half = 3.5 FLOPs per element."""
    r = rows[("softmax_attention", "sdpa")]
    head_dim, n_heads, n_kv_heads = D // 4, 4, 2
    assert r["flops_hf"] - r["flops_effprof"] == 3.5 * N * (n_heads + n_kv_heads) * head_dim
    assert set(r["differing_ops"]) == {"add", "mul", "neg"}


def test_mixtral_experts_count_the_same_matmuls(rows):
    r = rows[("moe_topk", "")]
    router = 2 * N * D * 8
    ours, theirs = r["differing_ops"]["mm"]
    assert theirs - router == ours  # Mixtral's gate is an mm; effprof's router (with bias) an addmm


def test_mistral_masked_attention_computes_the_whole_square(rows):
    """With a boolean window mask, sdpa computes every (query, key) pair (then masks): the square, not the band.

    effprof's fused form computes the band (O(n·window)); at this small n its 128-token blocks cover the square too.
    """
    r = rows[("sliding_window", "fused")]
    _, theirs = r["differing_ops"]["_scaled_dot_product_flash_attention_for_cpu"]
    n_heads, head_dim = 4, D // 4
    assert theirs == 2 * 2 * n_heads * N * N * head_dim + SOFTMAX_FLOPS * n_heads * N * N


def test_mamba_sequential_scan_within_a_few_percent(rows):
    """Same projections and scan: what differs is elementwise bookkeeping and the padded convolution."""
    r = rows[("mamba", "sequential")]
    assert r["flops_hf"] == pytest.approx(r["flops_effprof"], rel=0.03)
