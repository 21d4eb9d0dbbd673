"""The moe family against direct dense evaluations written out here: token choice (with and without a
capacity), expert choice, the dense baseline, the router losses, and FLOP / parameter scaling."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import effprof
from effprof.config import ConfigError, resolve_config
from effprof.measure.flops import FlopCounter
from effprof.measure.workload import make_workload
from effprof.registry import get_spec

TOKEN_CHOICE_IMPLS = ("sorted", "loop")
SMALL = {"batch": 2, "seq_len": 12, "d_model": 16, "d_ff": 8}


def _x(batch: int = 2, seq_len: int = 12, d_model: int = 16, seed: int = 1) -> torch.Tensor:
    return torch.randn(batch, seq_len, d_model, generator=torch.Generator().manual_seed(seed))


def _expert(x: torch.Tensor, w_in: torch.Tensor, w_out: torch.Tensor, activation: str) -> torch.Tensor:
    h = x @ w_in
    if activation == "swiglu":
        f = w_out.shape[0]
        h = F.silu(h[..., :f]) * h[..., f:]
    else:
        h = F.gelu(h)
    return h @ w_out


def _all_experts(module, tokens: torch.Tensor, activation: str = "swiglu") -> torch.Tensor:
    """Every expert on every token: (e, T, d). Only the tests do this."""
    w_in, w_out = module.experts.w_in, module.experts.w_out
    return torch.stack([_expert(tokens, w_in[i], w_out[i], activation) for i in range(w_in.shape[0])])


def _router_probs(module, tokens: torch.Tensor) -> torch.Tensor:
    gate = module.router.gate
    return torch.softmax(tokens @ gate.weight.T + gate.bias, dim=-1)  # (T, e)


def _token_choice_reference(module, x: torch.Tensor, top_k: int, capacity: int | None = None,
                            activation: str = "swiglu") -> tuple[torch.Tensor, int]:
    """Σ_k gate_k · E_k(x), dropping the assignments beyond `capacity` in position-major routing order."""
    b, n, d = x.shape
    tokens = x.transpose(0, 1).reshape(n * b, d)  # routing order: position, then batch
    probs = _router_probs(module, tokens)
    gates, experts = probs.topk(top_k, dim=-1)
    if top_k > 1:
        gates = gates / gates.sum(dim=-1, keepdim=True)
    outs = _all_experts(module, tokens, activation)
    used = [0] * probs.shape[1]
    dropped = 0
    y = torch.zeros_like(tokens)
    for t in range(tokens.shape[0]):
        for j in range(top_k):
            e = int(experts[t, j])
            used[e] += 1
            if capacity is not None and used[e] > capacity:
                dropped += 1
                continue
            y[t] += gates[t, j] * outs[e, t]
    if module.shared is not None:
        y += _expert(tokens, module.shared.w_in, module.shared.w_out, activation)
    return y.view(n, b, d).transpose(0, 1), dropped


@pytest.mark.parametrize("impl", TOKEN_CHOICE_IMPLS)
@pytest.mark.parametrize("top_k,shared,activation", [(1, 0, "swiglu"), (2, 0, "gelu"), (3, 1, "swiglu")])
def test_token_choice_equals_dense_evaluation(impl, top_k, shared, activation):
    module = effprof.build("moe_topk", **SMALL, impl=impl, top_k=top_k, n_shared_experts=shared, activation=activation)
    x = _x()
    with torch.no_grad():
        expected, _ = _token_choice_reference(module, x, top_k, activation=activation)
        torch.testing.assert_close(module(x), expected, rtol=1e-5, atol=1e-5)
    assert module.diagnostics()["dropped_fraction"] == 0.0


@pytest.mark.parametrize("impl", TOKEN_CHOICE_IMPLS)
def test_dropped_tokens_are_those_beyond_capacity_in_routing_order(impl):
    module = effprof.build("moe_topk", **SMALL, impl=impl, n_experts=4, top_k=2, capacity_factor=0.75)
    with torch.no_grad():  # skew the router so that some experts overflow
        module.router.gate.bias.copy_(torch.tensor([1.5, 1.0, 0.0, -1.0]))
    x = _x()
    capacity = math.ceil(0.75 * 24 * 2 / 4)
    with torch.no_grad():
        expected, dropped = _token_choice_reference(module, x, 2, capacity)
        y = module(x)
    assert dropped > 0
    torch.testing.assert_close(y, expected, rtol=1e-5, atol=1e-5)
    assert module.diagnostics()["dropped_fraction"] == pytest.approx(dropped / 48)


@pytest.mark.parametrize("capacity_factor", [0.0, -1.0])
def test_no_capacity_limit_drops_nothing(capacity_factor):
    module = effprof.build("moe_topk", **SMALL, n_experts=4, capacity_factor=capacity_factor)
    with torch.no_grad():  # every token prefers expert 0: a capacity would drop most of them
        module.router.gate.bias.copy_(torch.tensor([5.0, 4.0, 0.0, 0.0]))
        expected, dropped = _token_choice_reference(module, _x(), 2)
        torch.testing.assert_close(module(_x()), expected, rtol=1e-5, atol=1e-5)
    assert dropped == 0
    assert module.diagnostics()["dropped_fraction"] == 0.0
    assert module.diagnostics()["expert_load"][0] == 24


def test_capacity_keeps_the_layer_causal():
    """Position-major routing order: a token's slot depends only on tokens at the same or earlier positions."""
    module = effprof.build("moe_topk", **SMALL, n_experts=4, capacity_factor=0.75)
    with torch.no_grad():
        module.router.gate.bias.copy_(torch.tensor([1.5, 1.0, 0.0, -1.0]))
        x = _x()
        x2 = x.clone()
        w = module.router.gate.weight
        x2[:, 7:] = 20 * (w[3] - w[0]) / (w[3] - w[0]).norm()  # later tokens now all prefer expert 3
        y, y2 = module(x), module(x2)
    assert module.diagnostics()["dropped_fraction"] > 0
    torch.testing.assert_close(y[:, :7], y2[:, :7])
    assert not torch.allclose(y[:, 7:], y2[:, 7:])


@pytest.mark.parametrize("impl", TOKEN_CHOICE_IMPLS)
def test_all_experts_with_uniform_router_is_their_mean(impl):
    module = effprof.build("moe_topk", **SMALL, impl=impl, n_experts=4, top_k=4)
    with torch.no_grad():
        module.router.gate.weight.zero_()
        module.router.gate.bias.zero_()
        x = _x()
        expected = _all_experts(module, x.reshape(-1, 16)).mean(dim=0).view_as(x)
        torch.testing.assert_close(module(x), expected, rtol=1e-5, atol=1e-5)


def test_switch_gate_is_the_router_probability_and_trains_the_router():
    module = effprof.build("switch", **SMALL)
    x = _x()
    expected, _ = _token_choice_reference(module, x, 1)
    y = module(x)
    torch.testing.assert_close(y, expected, rtol=1e-5, atol=1e-5)
    y.square().sum().backward()
    assert module.router.gate.weight.grad.abs().sum() > 0


def test_one_expert_top_1_is_the_dense_ffn():
    """With e = k = 1 the only gate is 1 (softmax over one expert): moe_topk is dense_ffn."""
    moe = effprof.build("moe_topk", **SMALL, n_experts=1, top_k=1)
    dense = effprof.build("dense_ffn", **SMALL, top_k=1)
    with torch.no_grad():
        dense.ffn.w_in.copy_(moe.experts.w_in[0])
        dense.ffn.w_out.copy_(moe.experts.w_out[0])
        torch.testing.assert_close(moe(_x()), dense(_x()), rtol=1e-5, atol=1e-6)


def test_dense_ffn_width_is_top_k_times_d_ff():
    module = effprof.build("dense_ffn", **SMALL, top_k=3, activation="gelu")
    assert module.ffn.w_out.shape == (24, 16)
    with torch.no_grad():
        expected = _expert(_x(), module.ffn.w_in, module.ffn.w_out, "gelu")
        torch.testing.assert_close(module(_x()), expected)


@pytest.mark.parametrize("impl", ("batched", "loop"))
def test_expert_choice_fills_every_expert_to_capacity(impl):
    module = effprof.build("moe_expert_choice", **SMALL, impl=impl, n_experts=4, capacity_factor=1.5)
    x = _x()
    tokens = x.reshape(24, 16)
    capacity = math.ceil(24 * 1.5 / 4)
    with torch.no_grad():
        scores = _router_probs(module, tokens)  # (T, e)
        outs = _all_experts(module, tokens)
        expected = torch.zeros_like(tokens)
        for e in range(4):
            top = scores[:, e].topk(capacity).indices  # expert e's C best tokens
            expected[top] += scores[top, e, None] * outs[e, top]
        torch.testing.assert_close(module(x), expected.view_as(x), rtol=1e-5, atol=1e-5)
    chosen = module._chosen
    assert chosen.shape == (4, capacity)
    assert all(len(set(row.tolist())) == capacity for row in chosen)  # C distinct tokens per expert
    diagnostics = module.diagnostics()
    assert diagnostics["expert_load"] == [capacity] * 4 and diagnostics["load_cv"] == 0.0
    unchosen = 24 - len(set(chosen.flatten().tolist()))
    assert diagnostics["dropped_fraction"] == pytest.approx(unchosen / 24)


def test_expert_choice_is_not_causal_and_does_not_decode():
    spec = get_spec("moe_expert_choice")
    assert not spec.causal and "decode" not in spec.modes
    with pytest.raises(ConfigError, match="capacity_factor"):
        effprof.build("moe_expert_choice", capacity_factor=0)


def test_top_k_above_n_experts_is_refused():
    with pytest.raises(ConfigError, match="top_k"):
        effprof.build("moe_topk", n_experts=2, top_k=3)


def test_aux_and_z_loss_on_a_hand_built_routing():
    """d_model = e = 4, W_g = c·I, b_g = 0, one-hot tokens: token t goes to expert `route[t]` with p = e^c/(e^c + 3)."""
    c = 2.0
    module = effprof.build("switch", batch=1, seq_len=8, d_model=4, n_experts=4, d_ff=4)
    route = [0, 0, 0, 0, 1, 1, 2, 3]
    with torch.no_grad():
        module.router.gate.weight.copy_(torch.eye(4) * c)
        module.router.gate.bias.zero_()
        module(F.one_hot(torch.tensor(route), 4).float()[None])
    top, other = math.exp(c) / (math.exp(c) + 3), 1 / (math.exp(c) + 3)
    f = [4 / 8, 2 / 8, 1 / 8, 1 / 8]  # fraction of tokens routed to each expert
    P = [fi * top + (1 - fi) * other for fi in f]  # mean router probability of each expert
    diagnostics = module.diagnostics()
    assert diagnostics["aux_loss"] == pytest.approx(4 * sum(fi * pi for fi, pi in zip(f, P, strict=False)), rel=1e-6)
    assert diagnostics["z_loss"] == pytest.approx(math.log(math.exp(c) + 3) ** 2, rel=1e-6)
    assert diagnostics["expert_load"] == [4.0, 2.0, 1.0, 1.0]
    assert diagnostics["load_cv"] == pytest.approx(math.sqrt((4 + 0 + 1 + 1) / 4) / 2)


def test_hugging_face_aux_loss_is_k_times_switchs():
    """Mixtral/HF count f per token over the k slots: k · ours for top-k, equal for k = 1, k for a balanced router."""
    from effprof.mechanisms.moe.diagnostics import load_balancing_loss, load_balancing_loss_hf

    probs = torch.full((8, 4), 0.25)  # a uniform router, 8 tokens, e = 4
    balanced = torch.tensor([4.0, 4.0, 4.0, 4.0])  # top-2: 16 assignments, 4 per expert
    assert float(load_balancing_loss(probs, balanced)) == pytest.approx(1.0)
    assert float(load_balancing_loss_hf(probs, balanced)) == pytest.approx(2.0)
    x = torch.randn(2, 24, 32, generator=torch.Generator().manual_seed(3))
    for name, k in (("moe_topk", 2), ("moe_topk", 3), ("switch", 1)):
        module = effprof.build(name, batch=2, seq_len=24, d_model=32, n_experts=4, d_ff=16, **({"top_k": k} if k > 1 else {}))
        with torch.no_grad():
            module(x)
        diagnostics = module.diagnostics()
        assert diagnostics["aux_loss_hf"] == pytest.approx(k * diagnostics["aux_loss"], rel=1e-6), name
        assert diagnostics["aux_loss"] != pytest.approx(diagnostics["aux_loss_hf"]) or k == 1


def test_diagnostics_need_a_forward_call():
    with pytest.raises(RuntimeError, match="forward"):
        effprof.build("moe_topk", **SMALL).diagnostics()


def _counted_forward_flops(name: str, **overrides) -> float:
    config = resolve_config(get_spec(name), overrides)
    workload = make_workload(effprof.build(name, **overrides), config, "forward")
    with FlopCounter() as counter:
        workload.run()
    return counter.total


@pytest.mark.parametrize("name,impl", [("moe_topk", "sorted"), ("moe_topk", "loop"), ("moe_expert_choice", "batched")])
def test_flops_follow_active_experts_and_params_follow_experts(name, impl):
    sizes = {"seq_len": 64, "d_model": 32, "d_ff": 64, "impl": impl}
    few, many = (_counted_forward_flops(name, **sizes, n_experts=e) for e in (4, 32))
    assert many / few < 1.1  # only the router (and the loop's masks) grow with e
    params = [sum(p.numel() for p in effprof.build(name, **sizes, n_experts=e).parameters()) for e in (4, 32)]
    assert params[1] / params[0] == pytest.approx(8, rel=0.02)
    if name == "moe_topk":
        one, four = (_counted_forward_flops(name, **sizes, n_experts=8, top_k=k) for k in (1, 4))
        assert four / one == pytest.approx(4, rel=0.1)


@pytest.mark.parametrize("name,overrides", [
    ("moe_topk", {"impl": "loop", "top_k": 1, "n_shared_experts": 2, "activation": "gelu"}),
    ("moe_topk", {"impl": "sorted", "top_k": 3, "n_shared_experts": 1}),
    ("moe_expert_choice", {"impl": "loop", "capacity_factor": 1.3, "n_shared_experts": 1, "activation": "gelu"}),
    ("dense_ffn", {"activation": "gelu", "top_k": 3}),
])
@pytest.mark.parametrize("mode", ("forward", "train", "decode"))
def test_cost_model_beyond_defaults(name, overrides, mode):
    spec = get_spec(name)
    if mode not in spec.modes:
        pytest.skip(f"{name} has no {mode} mode")
    overrides = {**overrides, "seq_len": 64, "d_model": 32, "d_ff": 32, "batch": 2}
    config = resolve_config(spec, overrides)
    workload = make_workload(effprof.build(name, **overrides), config, mode)
    with FlopCounter() as counter:
        workload.run()
    assert not counter.unknown_ops
    assert counter.total / workload.per_call == pytest.approx(spec.cost(config, mode).flops, rel=0.02)
