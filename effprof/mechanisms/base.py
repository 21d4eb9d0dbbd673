"""What every mechanism module provides (ARCHITECTURE.md § Mechanisms).

    forward(x)            x: (batch, seq_len, d_model) -> (batch, seq_len, d_model)
    init_state(batch)     the empty decode state           (causal mechanisms)
    prefill(x)            -> (y, state)  state after seq_len tokens
    step(x_t, state)      x_t: (batch, 1, d_model) -> (y_t, new state)

`step` is functional: it returns a new state and leaves the one it was given
untouched, so a decode can be replayed from the same prefill state.
`state` is a tensor or a (nested) tuple/dict of tensors.

Optional hooks (declared on `Mechanism` below, each with what it must return): a
mechanism overrides the ones it has; the harness asks `provides(module, hook)`.

    training_loss(x)       its own training objective, backpropagated in train mode
    prepare(x)             the prompt's prefill for its own sampler (made once, not timed)
    generate(context, n)   its own sampler for decode mode: -> dict of figures
    diagnostics()          figures about the last forward call (MoE routing, ...)
    layer_kinds()          [(kind, submodule)]: the stack's layers by kind, for time by kind
    state_breakdown(state) {kind: bytes} of a decode state
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

State = Any


class Mechanism(nn.Module):
    config: dict[str, Any]

    def init_state(self, batch: int) -> State:
        raise NotImplementedError(f"{type(self).__name__} has no decode state")

    def prefill(self, x: torch.Tensor) -> tuple[torch.Tensor, State]:
        raise NotImplementedError(f"{type(self).__name__} does not decode")

    def step(self, x_t: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        raise NotImplementedError(f"{type(self).__name__} does not decode")

    # ---- optional hooks: override the ones the mechanism has; `provides` says which ----

    def training_loss(self, x: torch.Tensor) -> torch.Tensor:
        """A scalar loss of its own objective on x (batch, seq_len, d_model), e.g. the masked-diffusion
        loss. Train mode backpropagates it instead of forward(x) against a random output gradient.
        It may draw random numbers: the harness reseeds before each call."""
        raise NotImplementedError(f"{type(self).__name__} has no training_loss")

    def prepare(self, x: torch.Tensor) -> Any:
        """The context `generate` starts from (the prompt's KV cache, its token ids, ...), built from the
        prompt x (batch, seq_len, d_model) once and not timed. Without it, generate gets x itself."""
        raise NotImplementedError(f"{type(self).__name__} has no prepare")

    def generate(self, context: Any, gen_len: int) -> dict[str, Any]:
        """Its own sampler (diffusion LMs): generate gen_len tokens from `context`; decode mode times this
        instead of gen_len step() calls. Returns figures of the generation ({"forward_passes": ...});
        a "state" entry is measured as the decode state. Reseeded before each call."""
        raise NotImplementedError(f"{type(self).__name__} has no generate")

    def diagnostics(self) -> dict[str, Any]:
        """Figures about the last forward call, copied into the record (e.g. MoE aux_loss, expert_load):
        numbers, strings or lists of numbers."""
        raise NotImplementedError(f"{type(self).__name__} has no diagnostics")

    def layer_kinds(self) -> list[tuple[str, nn.Module]]:
        """(kind, sub-layer) for each layer of a stack, each module once; forward time is measured per kind."""
        raise NotImplementedError(f"{type(self).__name__} has no layer_kinds")

    def state_breakdown(self, state: State) -> dict[str, int]:
        """Bytes of a decode state by kind (attention_kv, ssm, conv, ...), summing to state_nbytes(state)."""
        raise NotImplementedError(f"{type(self).__name__} has no state_breakdown")


HOOKS = ("training_loss", "prepare", "generate", "diagnostics", "layer_kinds", "state_breakdown")


def provides(module: nn.Module, hook: str) -> bool:
    """Whether `module` implements optional hook `hook` (one of HOOKS): its class, or a mixin before
    Mechanism in its method order, defines it. A plain nn.Module (a plugin's) provides what it defines."""
    if hook not in HOOKS:
        raise ValueError(f"{hook!r} is not an optional hook; hooks: {', '.join(HOOKS)}")
    found = getattr(type(module), hook, None)
    return callable(found) and found is not getattr(Mechanism, hook)


def is_causal(module: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None) -> bool:
    """Outputs up to t are unchanged when the tokens after t change (t = the middle), within the rounding of x's dtype:
    the one causality check (a factory target's probe, a plugin's contract). `y`: module(x) where already computed."""
    t = x.shape[1] // 2
    x2 = x.clone()
    x2[:, t + 1:] += 1.0
    with torch.no_grad():
        y = module(x) if y is None else y
        y2 = module(x2)
    eps = torch.finfo(x.dtype).eps  # 1.2e-7 in float32 (a tolerance of 1e-5), 7.8e-3 in bfloat16
    return bool(torch.allclose(y[:, : t + 1].float(), y2[:, : t + 1].float(), rtol=8 * eps, atol=max(1e-5, 8 * eps)))


def state_tensors(state: State) -> list[torch.Tensor]:
    """Every tensor in a (nested) state."""
    if isinstance(state, torch.Tensor):
        return [state]
    if isinstance(state, dict):
        state = list(state.values())
    if isinstance(state, (list, tuple)):
        return [t for item in state for t in state_tensors(item)]
    return []


def state_nbytes(state: State) -> int:
    """Bytes held by a decode state, each storage counted once."""
    from effprof.runtime.storage import storage_key

    seen: dict[int, int] = {}
    for t in state_tensors(state):
        seen[storage_key(t)] = t.untyped_storage().nbytes()
    return sum(seen.values())


def split_heads(x: torch.Tensor, n_heads: int) -> torch.Tensor:
    """(b, n, h·d) -> (b, h, n, d)"""
    b, n, _ = x.shape
    return x.view(b, n, n_heads, -1).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(b, h, n, d) -> (b, n, h·d)"""
    b, h, n, d = x.shape
    return x.transpose(1, 2).reshape(b, n, h * d)
