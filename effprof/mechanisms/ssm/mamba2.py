"""Mamba-2: the SSD layer, a selective SSM with a scalar decay per head (Dao & Gu 2024).

Notation (the roadmap's, week 8: "Mamba2: scalar state transitions"). For input u: (b, n, d):

    [z, x, B, C, δ] = u W_in                          x, z: D_in;  B, C: N (one group, shared by heads);  δ: H
    [x, B, C] = SiLU(causal_conv1d([x, B, C]))       depthwise, width K
    Δ = softplus(δ + b_Δ),  A = -exp(A_log)           (b, n, H), (H,): Ā_t = exp(Δ_t A)·I, a scalar per head
    h_t = exp(Δ_t A) h_{t-1} + (Δ_t x_t) B_tᵀ,   y_t = h_t C_t + D x_t      per head, h: (P, N)
    out = RMSNorm(y ⊙ SiLU(z)) W_out                  gated RMSNorm: v / √(mean(v²) + ε) ⊙ w

Glossary: b batch, n seq_len, d d_model, D_in = expand·d, H n_heads, P = D_in / H head dim, N d_state,
K d_conv, Q chunk_size, c = ⌈n/Q⌉ chunks.

Forms (config `impl`), the same function (ssd.py):
- recurrent: the token loop over h_t. O(n·H·P·N) FLOPs, n Python steps.
- quadratic: the masked "attention-like" dual form Y = (L ∘ C Bᵀ) X, L_ts = exp(a_{s+1} + … + a_t).
  O(n²·H·(N + P)) FLOPs and an (n × n) mask per head.
- chunked: the SSD block decomposition: quadratic inside chunks of Q tokens, states passed between chunks.
  O(n·Q·H·(N + P) + n·H·P·N) FLOPs, a Python loop over the n/Q chunks only.

Decode keeps the conv window ((D_in + 2N)·(K-1)) and h (H·P·N) per sequence: constant in n.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from effprof.config import ConfigError
from effprof.mechanisms.base import Mechanism
from effprof.mechanisms.ssm.conv import CausalConv1d, init_dt_bias
from effprof.mechanisms.ssm.mamba2_cost import mamba2_cost
from effprof.mechanisms.ssm.ssd import chunked_ssd, final_state, quadratic_ssd, recurrent_ssd
from effprof.registry import Claim, MeasureHints, MechanismSpec, Paper, TestHooks, register

IMPLS = ("recurrent", "quadratic", "chunked")
RMS_EPS = 1e-5


class Mamba2(Mechanism):
    def __init__(self, d_model: int, d_state: int, expand: int, d_conv: int, n_heads: int, impl: str, chunk_size: int):
        super().__init__()
        d_inner = expand * d_model
        self.d_inner, self.d_state, self.n_heads, self.impl, self.chunk_size = d_inner, d_state, n_heads, impl, chunk_size
        self.in_proj = nn.Linear(d_model, 2 * d_inner + 2 * d_state + n_heads, bias=False)  # W_in
        self.conv = CausalConv1d(d_inner + 2 * d_state, d_conv)
        self.dt_bias = nn.Parameter(init_dt_bias(n_heads))  # b_Δ
        self.A_log = nn.Parameter(torch.log(torch.empty(n_heads).uniform_(1, 16)))  # A ∈ -[1, 16] at init
        self.D = nn.Parameter(torch.ones(n_heads))
        self.norm_weight = nn.Parameter(torch.ones(d_inner))  # w of the gated RMSNorm
        self.out_proj = nn.Linear(d_inner, d_model, bias=False)  # W_out

    def _split(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """u: (b, n, d) -> z (b, n, D_in), xBC before the conv (b, n, D_in + 2N), δ (b, n, H)."""
        return self.in_proj(u).split([self.d_inner, self.d_inner + 2 * self.d_state, self.n_heads], dim=-1)

    def _ssd_inputs(self, xBC: torch.Tensor, dt: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """After the conv: x (b, H, n, P), X = Δx (b, H, n, P), a = ΔA (b, H, n), B, C (b, n, N)."""
        x, B, C = xBC.split([self.d_inner, self.d_state, self.d_state], dim=-1)
        b, n, _ = x.shape
        x = x.view(b, n, self.n_heads, -1).transpose(1, 2).contiguous()  # (b, H, n, P), heads-major for the matmuls
        delta = F.softplus(dt + self.dt_bias).transpose(1, 2)  # Δ: (b, H, n)
        return x, x * delta[..., None], delta * -torch.exp(self.A_log)[:, None], B, C

    def _output(self, y: torch.Tensor, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """y, x: (b, H, n, P); z: (b, n, D_in) -> RMSNorm((y + D x) ⊙ SiLU(z)) W_out."""
        y = y + x * self.D[:, None, None]
        b, H, n, P = y.shape
        v = y.transpose(1, 2).reshape(b, n, H * P) * F.silu(z)
        v = v * torch.rsqrt(v.pow(2).mean(-1, keepdim=True) + RMS_EPS) * self.norm_weight
        return self.out_proj(v)

    def _mix(self, u: torch.Tensor, with_state: bool) -> tuple[torch.Tensor, dict[str, torch.Tensor] | None]:
        z, xBC_in, dt = self._split(u)
        x, X, a, B, C = self._ssd_inputs(F.silu(self.conv(xBC_in)), dt)
        if self.impl == "recurrent":
            y, h = recurrent_ssd(X, a, B, C, X.new_zeros(X.shape[0], self.n_heads, X.shape[-1], self.d_state))
        elif self.impl == "quadratic":
            y = quadratic_ssd(X, a, B, C)
            h = final_state(X, a, B) if with_state else None  # the dual form has no state of its own
        else:
            y, h = chunked_ssd(X, a, B, C, self.chunk_size)
        return self._output(y, x, z), {"conv": self.conv.window(xBC_in), "ssm": h} if with_state else None

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return self._mix(u, with_state=False)[0]

    def init_state(self, batch: int) -> dict[str, torch.Tensor]:
        w = self.norm_weight
        return {
            "conv": w.new_zeros(batch, self.d_inner + 2 * self.d_state, self.conv.width - 1),
            "ssm": w.new_zeros(batch, self.n_heads, self.d_inner // self.n_heads, self.d_state),
        }

    def prefill(self, u: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return self._mix(u, with_state=True)

    def step(self, u_t: torch.Tensor, state: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        z, xBC_in, dt = self._split(u_t)
        xBC, window = self.conv.step(xBC_in, state["conv"])
        x, X, a, B, C = self._ssd_inputs(F.silu(xBC), dt)
        y, h = recurrent_ssd(X, a, B, C, state["ssm"])  # one token
        return self._output(y, x, z), {"conv": window, "ssm": h}


def _validate(config: dict[str, Any]) -> None:
    d_inner = config["expand"] * config["d_model"]
    if d_inner % config["n_heads"]:
        raise ConfigError(
            f"n_heads={config['n_heads']} does not divide expand·d_model={d_inner}; accepted: a divisor of {d_inner}"
        )


@register(
    MechanismSpec(
        name="mamba2",
        complexity={"prefill": "O(N·(C·(P + N_s) + P·N_s)·h) chunked; O(N²) quadratic", "train": "same as prefill",
                    "decode": "O(h·P·N_s) per token", "state": "O(h·P·N_s) + conv window"},
        family="ssm",
        summary="Mamba-2 SSD layer (scalar decay per head): recurrent, quadratic dual (masked, attention-like) or chunked",
        paper=Paper(
            "Transformers are SSMs: Generalized Models and Efficient Algorithms Through Structured State Space Duality",
            2024,
            "2405.21060",
        ),
        causal=True,
        defaults={"d_state": 16, "expand": 2, "d_conv": 4, "n_heads": 4, "impl": "chunked", "chunk_size": 64},
        choices={"impl": IMPLS},
        cost=mamba2_cost,
        validate=_validate,
        measure=MeasureHints(loop_impls=("recurrent", "chunked")),
        tests=TestHooks(overrides={"chunk_size": 5}),
        claims=(
            Claim("flops", "seq_len", 1.0, "forward", {"impl": "recurrent"}),
            Claim("flops", "seq_len", 1.0, "forward", {"impl": "chunked"}),
            Claim("flops", "seq_len", 2.0, "forward", {"impl": "quadratic"}),
            Claim("flops", "seq_len", 1.0, "train", {"impl": "chunked"}),
            Claim("state_bytes", "seq_len", 0.0, "decode"),
            Claim("flops", "seq_len", 0.0, "decode"),
        ),
    )
)
def build_mamba2(config: dict[str, Any]) -> Mamba2:
    return Mamba2(
        config["d_model"], config["d_state"], config["expand"], config["d_conv"], config["n_heads"], config["impl"],
        config["chunk_size"],
    )
