"""The hybrid family (hybrid, jamba, zamba, hymba): layouts, shared weights, meta tokens, state by kind, claims."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

import effprof
from effprof.analyse.fit import fit_frame
from effprof.config import ConfigError, resolve_config
from effprof.measure.harness import applicable_claims, time_by_layer_kind
from effprof.mechanisms.base import state_nbytes
from effprof.mechanisms.hybrid import blocks
from effprof.mechanisms.hybrid.cost import layer_costs, shared_parameters
from effprof.mechanisms.hybrid.hybrid import stack_plan
from effprof.mechanisms.hybrid.hymba import full_attention_layers
from effprof.mechanisms.hybrid.jamba import jamba_pattern
from effprof.mechanisms.hybrid.layers import parse_pattern
from effprof.mechanisms.hybrid.zamba import zamba_plan
from effprof.registry import get_spec, list_mechanisms
from tests.helpers import runs_here

TINY = {"batch": 2, "seq_len": 12, "d_model": 16, "d_state": 4, "chunk_size": 5, "d_ff": 8}
ALL_LETTERS = "AWMSLEF"


def _x(b: int, n: int, d: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(b, n, d, generator=torch.Generator().manual_seed(seed))


def _prefill_state(name: str, **config):
    module = effprof.build(name, **config).eval()
    with torch.no_grad():
        _, state = module.prefill(_x(config["batch"], config["seq_len"], config["d_model"]))
    return module, state


def _mixers(module) -> list[str]:
    """Type name of each block's layer (Residual blocks only)."""
    return [type(block.mixer).__name__ for block in module.blocks]


# ----------------------------------------------------------------------------- patterns


def test_pattern_repeated_and_cut_to_n_layers():
    names = lambda pattern, n: [name for name, _ in parse_pattern(pattern, n)]  # noqa: E731
    assert names("MMMA", None) == ["mamba", "mamba", "mamba", "softmax_attention"]
    assert names("MA", 5) == ["mamba", "softmax_attention", "mamba", "softmax_attention", "mamba"]
    assert names("MMMA", 2) == ["mamba", "mamba"]
    assert names("mamba,mamba,softmax_attention", None) == ["mamba", "mamba", "softmax_attention"]
    assert names("mamba, A ,E", 4) == ["mamba", "softmax_attention", "moe_topk", "mamba"]
    assert names("mamba2", None) == ["mamba2"]


def test_letters_build_the_registered_mechanisms():
    module = effprof.build("hybrid", pattern=ALL_LETTERS, **TINY)
    assert _mixers(module) == ["SoftmaxAttention", "SlidingWindowAttention", "Mamba", "Mamba2", "LinearAttention",
                               "TokenChoiceMoE", "DenseFFN"]
    assert module.blocks[0].mixer.impl == "sdpa" and module.blocks[2].mixer.impl == "auto"
    assert all(isinstance(block.norm, blocks.RMSNorm) for block in module.blocks)
    assert module.blocks[5].mixer.n_experts == 8 and module.blocks[2].mixer.d_state == 4  # the stack's values


@pytest.mark.parametrize("pattern, bad", [("AMX", "'X'"), ("amef", "'a'"), ("A M", "' '")])
def test_bad_letter_is_named_with_the_accepted_ones(pattern, bad):
    with pytest.raises(ConfigError) as error:
        effprof.build("hybrid", pattern=pattern, **TINY)
    message = str(error.value)
    assert f"bad letter {bad}" in message
    assert "A (softmax_attention)" in message and "M (mamba)" in message and "E (moe_topk)" in message


@pytest.mark.parametrize("pattern, bad", [("mamba,attention_xl", "attention_xl"), ("mamba,moe_expert_choice", "moe_expert_choice"),
                                          ("A,jamba", "jamba"), ("A,,M", "''")])
def test_bad_name_is_named_with_the_accepted_ones(pattern, bad):
    with pytest.raises(ConfigError, match=f"unknown layer '?{bad}'?") as error:
        effprof.build("hybrid", pattern=pattern, **TINY)
    assert "softmax_attention" in str(error.value) and "M (mamba)" in str(error.value)


def test_empty_pattern_and_bad_sub_layer_config_are_rejected():
    with pytest.raises(ConfigError, match="empty"):
        resolve_config(get_spec("hybrid"), {"pattern": " "})
    with pytest.raises(ConfigError, match="n_heads=3"):  # mamba2's heads must divide expand·d_model
        resolve_config(get_spec("hybrid"), {"pattern": "S", "n_heads": 3, "d_model": 16})


@pytest.mark.parametrize("pattern", [ALL_LETTERS, "mamba,s4,A,switch"])
def test_prefill_then_step_equals_forward_for_every_letter(pattern):
    config = {**TINY, "window": 4, "block_size": 4}
    module = effprof.build("hybrid", pattern=pattern, **config).eval()
    x = _x(2, 12, 16)
    with torch.no_grad():
        full = module(x)
        y, state = module.prefill(x[:, :8])
        outputs = [y]
        for i in range(8, 12):
            y_t, state = module.step(x[:, i : i + 1], state)
            outputs.append(y_t)
    torch.testing.assert_close(torch.cat(outputs, dim=1), full, rtol=1e-4, atol=1e-4)


def test_stack_is_the_sum_of_its_residual_blocks():
    """y = x + f₁(norm₁(x)), then + f₂(norm₂(·)): recomputed from the sub-modules by hand."""
    module = effprof.build("hybrid", pattern="MA", **TINY).eval()
    x = _x(2, 12, 16)
    with torch.no_grad():
        h = x
        for block in module.blocks:
            n = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + blocks.RMS_EPS) * block.norm.weight
            h = h + block.mixer(n)
        torch.testing.assert_close(module(x), h)


# ----------------------------------------------------------------------------- state by kind


@pytest.mark.parametrize("name, overrides", [
    ("hybrid", {"pattern": ALL_LETTERS, "window": 4, "block_size": 4}),
    ("hybrid", {"pattern": "mamba,s4,A"}),
    ("jamba", {}),
    ("zamba", {"n_layers": 4, "shared_every": 2}),
    ("hymba", {"n_layers": 4, "n_meta": 3, "window": 4, "block_size": 4}),
])
def test_state_breakdown_sums_to_state_bytes_and_matches_the_cost_model(name, overrides):
    config = {**TINY, **overrides}
    module, state = _prefill_state(name, **config)
    breakdown = module.state_breakdown(state)
    assert sum(breakdown.values()) == state_nbytes(state)
    if "M" in config.get("pattern", "M"):
        assert breakdown["ssm"] > 0 and breakdown["conv"] > 0
    spec = get_spec(name)
    extra = spec.cost(resolve_config(spec, config), "decode").extra
    assert {k: v for k, v in breakdown.items()} == {k[len("state_bytes_"):]: v for k, v in extra.items() if k.startswith("state_bytes_")}


def test_jamba_kv_cache_is_an_eighth_of_all_attention_plus_constant_ssm_state():
    """Jamba at 8 layers vs an all-attention stack of the same width: KV / 8, plus Mamba states constant in n."""
    base = {**TINY, "n_heads": 2}
    kv, other = {}, {}
    for n in (12, 24):
        jamba, jamba_state = _prefill_state("jamba", **{**base, "seq_len": n, "n_layers": 8})
        attention, attention_state = _prefill_state("hybrid", **{**base, "seq_len": n, "pattern": "A" * 8})
        jamba_kinds, attention_kinds = jamba.state_breakdown(jamba_state), attention.state_breakdown(attention_state)
        assert set(attention_kinds) == {"attention_kv"}
        assert jamba_kinds["attention_kv"] * 8 == attention_kinds["attention_kv"]
        assert attention_kinds["attention_kv"] == 8 * 2 * 2 * n * 16 * 4  # 8 layers · K and V · b · n · d · 4 bytes
        kv[n] = jamba_kinds["attention_kv"]
        other[n] = state_nbytes(jamba_state) - kv[n]
        _, mamba_state = _prefill_state("mamba", batch=2, seq_len=n, d_model=16, d_state=4, chunk_size=5)
        assert other[n] == 7 * state_nbytes(mamba_state)  # seven Mamba layers' conv windows and states
        assert state_nbytes(jamba_state) == attention_kinds["attention_kv"] // 8 + 7 * state_nbytes(mamba_state)
    assert other[12] == other[24] and kv[24] == 2 * kv[12]


# ----------------------------------------------------------------------------- jamba


def test_jamba_layout_one_attention_in_eight_moe_every_other_layer():
    assert jamba_pattern(8) == "MFMEMFMEAFMEMFME"
    module = effprof.build("jamba", **{**TINY, "n_layers": 16})
    mixers = _mixers(module)
    assert len(mixers) == 32  # a mixer block and an FFN block per layer
    attention = [i for i, m in enumerate(mixers[0::2]) if m == "SoftmaxAttention"]
    mamba = [i for i, m in enumerate(mixers[0::2]) if m == "Mamba"]
    assert attention == [4, 12] and len(mamba) == 14  # a:m = 1:7
    assert [m for m in mixers[1::2]] == ["DenseFFN", "TokenChoiceMoE"] * 8
    moe, dense = module.blocks[3].mixer, module.blocks[1].mixer
    assert moe.n_experts == 16 and moe.top_k == 2
    assert dense.ffn.w_out.shape[0] == TINY["d_ff"] == moe.experts.w_out.shape[1]  # dense FFN as wide as one expert


def test_jamba_costs_by_layer_kind():
    spec = get_spec("jamba")
    config = resolve_config(spec, {})
    for mode in ("forward", "train", "decode"):
        cost = spec.cost(config, mode)
        assert set(cost.extra) >= {"flops_attention", "flops_ssm", "flops_moe", "flops_ffn", "flops_stack"}
        assert all(isinstance(v, float) for v in cost.extra.values())
        flops = sum(v for k, v in cost.extra.items() if k.startswith("flops_"))
        assert flops == pytest.approx(cost.flops, rel=1e-12)
    from effprof.mechanisms.hybrid.jamba import jamba_plan

    entries = layer_costs(jamba_plan(config), "forward")
    kinds = [e["kind"] for e in entries if e["kind"] != "stack"]
    assert kinds.count("attention") == 1 and kinds.count("ssm") == 7 and kinds.count("moe") == 4 and kinds.count("ffn") == 4
    attention = next(e for e in entries if e["kind"] == "attention")
    mamba = next(e for e in entries if e["kind"] == "ssm")
    assert attention["state_bytes"] == 2 * 1 * 2 * 512 * 64 * 4 and mamba["state_bytes"] > 0


# ----------------------------------------------------------------------------- zamba


def test_zamba_shared_block_is_one_set_of_weights():
    config = {**TINY, "n_layers": 4, "shared_every": 2}
    module = effprof.build("zamba", **config)
    applications = [block for block in module.blocks if isinstance(block, blocks.Shared)]
    assert len(applications) == 2 and applications[0].shared is applications[1].shared
    assert applications[0].proj is not applications[1].proj  # W_ℓ: each application's own
    mamba = sum(p.numel() for p in effprof.build("mamba", **{k: v for k, v in TINY.items() if k != "d_ff"}).parameters())
    d = TINY["d_model"]
    shared = shared_parameters(zamba_plan(resolve_config(get_spec("zamba"), config)).blocks[2].shared)
    assert shared == sum(p.numel() for p in applications[0].shared.parameters())
    expected = 4 * (mamba + d) + shared + 2 * (2 * d * d)
    assert sum(p.numel() for p in module.parameters()) == expected
    # twice the layers, twice the applications: only Mamba layers, norms and projections are added
    bigger = effprof.build("zamba", **{**config, "n_layers": 8})
    assert sum(p.numel() for p in bigger.parameters()) == expected + 4 * (mamba + d) + 2 * (2 * d * d)


def test_zamba_shared_block_reads_the_original_input_and_keeps_a_cache_per_application():
    config = {**TINY, "n_layers": 4, "shared_every": 2}
    module, state = _prefill_state("zamba", **config)
    b, n, d, h = 2, 12, 16, 2
    assert module.state_breakdown(state)["attention_kv"] == 2 * (2 * b * h * n * (2 * d // h) * 4)  # 2 caches at 2d
    # the shared block sees [h ; x]: its attention's W^Q reads 2d features
    assert module.blocks[2].shared.blocks[0].mixer.q_proj.in_features == 2 * d
    # both applications name the very same tensors
    named = dict(module.named_parameters(remove_duplicate=False))
    for key in ("shared.blocks.0.mixer.q_proj.weight", "shared.blocks.1.mixer.ffn.w_in", "shared.blocks.0.norm.weight"):
        assert named[f"blocks.2.{key}"] is named[f"blocks.5.{key}"]
    assert named["blocks.2.proj.weight"] is not named["blocks.5.proj.weight"]


def test_zamba_layer_kinds_list_the_shared_attention_once():
    module = effprof.build("zamba", **{**TINY, "n_layers": 6, "shared_every": 2})
    kinds = [kind for kind, _ in module.layer_kinds()]
    assert kinds.count("attention") == 1 and kinds.count("ssm") == 6 and kinds.count("ffn") == 1
    x = _x(2, 12, 16)
    with torch.no_grad():
        times = time_by_layer_kind(module, lambda: module(x), repeats=1)
    assert set(times) == {"attention", "ssm", "ffn"}


# ----------------------------------------------------------------------------- hymba

HYMBA = {**TINY, "n_layers": 5, "n_meta": 3, "window": 4, "block_size": 4}


def test_hymba_layout_full_attention_first_middle_last():
    module = effprof.build("hymba", **HYMBA)
    parallel = module.blocks[0::2]
    assert full_attention_layers(5) == {0, 2, 4}
    kinds = [type(block.attention).__name__ for block in parallel]
    assert kinds == ["SoftmaxAttention", "LongformerAttention", "SoftmaxAttention", "LongformerAttention", "SoftmaxAttention"]
    assert all(type(block.ssm).__name__ == "Mamba" for block in parallel)
    assert parallel[1].attention.n_global == 3 and parallel[1].attention.window == 4  # meta tokens are global keys
    assert all(type(block.mixer).__name__ == "DenseFFN" for block in module.blocks[1::2])


def test_hymba_fusion_is_the_mean_of_normalised_outputs():
    module = effprof.build("hymba", **HYMBA).eval()
    block = module.blocks[0]
    with torch.no_grad():
        block.attention_norm.weight.uniform_(0.5, 2.0)  # β₁, β₂: learnable scales
        block.ssm_norm.weight.uniform_(0.5, 2.0)
        h = _x(2, 12, 16)
        u = block.norm(h)
        a, s = block.attention(u), block.ssm(u)
        rms = lambda v: v * torch.rsqrt(v.pow(2).mean(-1, keepdim=True) + blocks.RMS_EPS)  # noqa: E731
        expected = h + 0.5 * (block.attention_norm.weight * rms(a) + block.ssm_norm.weight * rms(s))
        torch.testing.assert_close(block(h, h), expected)


def test_hymba_meta_tokens_are_prepended_learnable_and_in_the_state():
    module = effprof.build("hymba", **HYMBA).eval()
    assert module.meta.shape == (3, 16) and module.meta.requires_grad
    x = _x(2, 12, 16)
    with torch.no_grad():
        y = module(x)
        torch.testing.assert_close(y, super(type(module), module).forward(module.with_meta(x))[:, 3:])
        state = module.init_state(2)
        assert state[0]["attention"]["key"].shape[2] == 3  # full layer: the meta tokens' keys
        assert state[2]["attention"]["global_key"].shape[2] == 3  # windowed layer: the meta tokens as globals
        _, state = module.prefill(x)
        assert state[0]["attention"]["key"].shape[2] == 3 + 12
        assert state[2]["attention"]["global_key"].shape[2] == 3 and state[2]["attention"]["key"].shape[2] == 3  # w − 1
        module.meta.add_(1.0)
        assert not torch.allclose(module(x), y)  # every output reads the meta tokens
    plain = effprof.build("hymba", **{**HYMBA, "n_meta": 0})
    assert sum(p.numel() for p in module.parameters()) - sum(p.numel() for p in plain.parameters()) == 3 * 16


def test_hymba_meta_tokens_stay_visible_beyond_the_window():
    """A windowed layer alone (n_layers 4: layer 1): a query far past the window still reads the meta keys."""
    module = effprof.build("hymba", **{**HYMBA, "seq_len": 20}).eval()
    layer = module.blocks[2].attention  # layer 1: windowed
    u = _x(1, 3 + 20, 16)
    with torch.no_grad():
        y = layer(u)
        u2 = u.clone()
        u2[:, :3] += 1.0  # change the meta positions only
        y2 = layer(u2)
    assert not torch.allclose(y[:, -1], y2[:, -1])  # the last query is 20 > window positions past them


# ----------------------------------------------------------------------------- claims


def test_claims_pass_on_the_analytic_costs_from_512_to_32768():
    rows = []
    for name, overrides in [("hybrid", {}), ("hybrid", {"pattern": "MEMF"}), ("jamba", {}), ("zamba", {}), ("hymba", {})]:
        spec = get_spec(name)
        for mode in ("forward", "train", "decode"):
            for n in (512, 1024, 2048, 4096, 8192, 16384, 32768):  # jamba train: n² passes n only near 16384
                config = resolve_config(spec, {**overrides, "seq_len": n})
                cost = spec.cost(config, mode)
                rows.append({**config, "mechanism": name, "mode": mode, "status": "ok", "flops_counted": cost.flops,
                             "state_bytes": cost.state_bytes if mode == "decode" else None,
                             "claims": applicable_claims(spec, config, mode)})
    fits = fit_frame(pd.DataFrame(rows))
    claimed = fits[fits["verdict"] != "no-claim"]
    assert len(claimed) == 19
    assert (claimed["verdict"] == "pass").all(), claimed[["mechanism", "variant", "mode", "metric", "exponent", "leading_exponent"]]
    forward = claimed[(claimed["mode"] == "forward") & (claimed["variant"] != "pattern=MEMF")]
    assert ((forward["exponent"] > 1.0) & (forward["exponent"] < 2.0)).all()  # between linear and quadratic at these sizes


def test_family_is_registered():
    assert {"hybrid", "jamba", "zamba", "hymba"} <= set(list_mechanisms("hybrid"))
    assert stack_plan(resolve_config(get_spec("hybrid"), {"pattern": "AM", "n_layers": 3})).blocks[2].layer.name == "softmax_attention"


def test_mamba_layers_resolve_auto_as_mamba_does_whether_named_by_letter_or_by_name():
    """A stack's Mamba layers run mamba's own default, impl auto, resolved per point by mamba's rule."""
    from effprof.mechanisms.hybrid.hymba import hymba_plan
    from effprof.mechanisms.hybrid.jamba import jamba_plan
    from effprof.mechanisms.hybrid.plan import layers_of

    assert parse_pattern("M", None) == parse_pattern("mamba", None) == [("mamba", {"impl": "auto"})]
    assert parse_pattern("mamba,softmax_attention", None)[1] == ("softmax_attention", {"impl": "sdpa"})
    assert parse_pattern("mamba2", None) == [("mamba2", {})]
    for name, plan in (("jamba", jamba_plan), ("zamba", zamba_plan), ("hymba", hymba_plan)):
        config = resolve_config(get_spec(name), {})
        mambas = [item for item in layers_of(plan(config).blocks) if item.name == "mamba"]
        assert mambas and all(item.config["impl"] == "auto" for item in mambas), name
        assert get_spec(name).kernels == ("selective_scan",)


COMPILED_SCAN = "selective_scan"  # the custom op's name in a FLOP count


def _stack_ops(dtype: str, mode: str = "forward") -> dict:
    from effprof.measure.flops import FlopCounter
    from effprof.measure.workload import make_workload

    config = resolve_config(get_spec("hybrid"), {**TINY, "pattern": "MA", "dtype": dtype})
    module = effprof.build("hybrid", **config)
    workload = make_workload(module, config, mode)
    with FlopCounter() as counter:
        workload.run()
    return dict(counter.by_op)


@pytest.mark.skipif(not runs_here("mamba", "chunked_c"), reason="the compiled scan is not built here")
@pytest.mark.parametrize("mode", ["forward", "train"])
def test_stack_runs_the_compiled_scan_where_mamba_would(mode):
    """CPU float32: the stack's mamba layer runs the compiled kernel (its op in the count), train included;
    bfloat16: the torch form, as mamba alone resolves it there."""
    assert any(COMPILED_SCAN in op for op in _stack_ops("float32", mode)), _stack_ops("float32", mode)
    assert not any(COMPILED_SCAN in op for op in _stack_ops("bfloat16", mode))


@pytest.mark.skipif(not runs_here("mamba", "chunked_c"), reason="the compiled scan is not built here")
def test_stack_with_the_compiled_scan_equals_the_torch_form():
    """Outputs and gradients of a stack whose Mamba layer resolves to chunked_c equal those of the same stack
    with the layer named chunked (same weights)."""
    config = {**TINY, "pattern": "MAM"}
    auto = effprof.build("hybrid", **config)
    from effprof.mechanisms.hybrid import layers

    fixed = layers.LETTERS["M"]
    try:
        layers.LETTERS["M"] = ("mamba", {"impl": "chunked"})
        torch_form = effprof.build("hybrid", **config)
    finally:
        layers.LETTERS["M"] = fixed
    torch_form.load_state_dict(auto.state_dict())
    assert {b.mixer.impl for b in torch_form.blocks if type(b.mixer).__name__ == "Mamba"} == {"chunked"}
    results = []
    for module in (auto, torch_form):
        x = _x(2, 12, 16).requires_grad_(True)
        y = module(x)
        y.backward(torch.cos(y.detach()))
        results.append((y.detach(), x.grad, module.blocks[0].mixer.in_proj.weight.grad, module.blocks[0].mixer.A_log.grad))
    for expected, actual in zip(results[1], results[0], strict=True):
        torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-5)


def test_explain_says_which_form_each_layer_of_a_stack_runs():
    from effprof.registry import forms_note

    spec = get_spec("hybrid")
    note = forms_note(spec, resolve_config(spec, {"pattern": "MAW"}))
    expected = "chunked_c" if runs_here("mamba", "chunked_c") else "chunked ("
    assert f"mamba: impl=auto: forward/train/decode → {expected}" in note, note
    assert "softmax_attention: impl=sdpa" in note and "sliding_window: impl=fused" in note
    bf16 = forms_note(spec, resolve_config(spec, {"pattern": "MAW", "dtype": "bfloat16"}))
    assert "→ chunked (chunked_c runs in float32 only, not bfloat16)" in bf16, bf16
    assert "→ chunked_c" not in bf16
