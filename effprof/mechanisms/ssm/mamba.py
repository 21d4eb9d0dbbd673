"""Mamba: the selective state-space block (Gu & Dao 2023).

Notation (the roadmap's, week 8: an SSM whose parameters depend on the data). For input u: (b, n, d):

    [x, z] = u W_in                                   in-projection to 2·D_in
    x      = SiLU(causal_conv1d(x))                   depthwise, width K
    [δ, B, C] = x W_x                                 per token: δ (R), B (N), C (N)
    Δ      = softplus(δ W_Δ + b_Δ)                    per token and channel: (b, n, D_in)
    A      = -exp(A_log)                              (D_in, N), diagonal per channel
    Ā_t = exp(Δ_t A),   B̄_t = Δ_t B_t                 zero-order hold (B̄ simplified as in the paper)
    h_t = Ā_t ⊙ h_{t-1} + B̄_t x_t,   y_t = C_t h_t + D ⊙ x_t        (selective scan)
    out = (y ⊙ SiLU(z)) W_out

Glossary: b batch, n seq_len, d d_model, E expand, D_in = E·d inner width, N d_state, R = ⌈d/16⌉ rank of Δ's
projection, K d_conv, C chunk_size, c = ⌈n/C⌉ lanes.

Forms (config `impl`), the same function (selective_scan.py):
- sequential: the token loop over h_t, as in the paper's reference scan. n Python steps.
- chunked: a three-phase parallel scan over c lanes of C tokens: 2C + c Python steps, each on c·D_in·N values.
  Always the torch form, in every mode, device and dtype.
- chunked_c: the same three phases, and the output's D skip and gate, as one compiled kernel
  (effprof/kernels/selective_scan.c, the op effprof::selective_scan; records list it under `custom_ops`), the
  same arithmetic op for op (where b·D_in ≥ 256, sequences × channel blocks occupy the threads and it runs the
  scan in one pass, one lane of n tokens, storing the state entering each chunk for the backward), with a
  compiled backward (effprof::selective_scan_backward: the adjoint scan, by
  the same lanes), so it runs forward, prefill and train. On CPU in float32, d_state ≤ the kernel's STATE_MAX
  (256): another device or dtype, or a larger d_state, is refused when the config is checked; building it
  where the kernel is not built (no C compiler, EFFPROF_KERNELS=0) raises KernelUnsupported. It never falls
  back to another form.
- auto (the default): the fastest of these that runs at the point, as the paper's own fused kernel is what
  Mamba stands for: chunked_c on CPU in float32 where the kernel is built and d_state fits, chunked
  elsewhere (selective_scan.fastest_scan). Records say which ran (`impl_resolved`) and why (`impl_reason`).
  The kernel is compiled when a point first resolves auto, never when effprof starts.
All are O(n·D_in·N) FLOPs; the chunked forms do about twice the exponentials (each lane's incoming state
is decayed to every position) but no loop over tokens.

Decode keeps the conv window (the last K-1 inputs, D_in·(K-1)) and h (D_in·N) per sequence: constant in n.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from effprof import kernels
from effprof.config import ConfigError
from effprof.mechanisms.base import Mechanism
from effprof.mechanisms.ssm.conv import CausalConv1d, init_dt_bias
from effprof.mechanisms.ssm.mamba_cost import dt_rank, mamba_cost
from effprof.mechanisms.ssm.selective_scan import COMPILED, IMPLS, KernelUnsupported, fastest_scan, selective_scan, state_max
from effprof.registry import AUTO, Claim, MeasureHints, MechanismSpec, Paper, Resolution, TestHooks, register


class Mamba(Mechanism):
    def __init__(self, d_model: int, d_state: int, expand: int, d_conv: int, impl: str, chunk_size: int):
        super().__init__()
        d_inner, rank = expand * d_model, dt_rank(d_model)
        self.d_state, self.rank, self.impl, self.chunk_size = d_state, rank, impl, chunk_size
        self.in_proj = nn.Linear(d_model, 2 * d_inner, bias=False)  # W_in
        self.conv = CausalConv1d(d_inner, d_conv)
        self.x_proj = nn.Linear(d_inner, rank + 2 * d_state, bias=False)  # W_x
        self.dt_proj = nn.Linear(rank, d_inner)  # W_Δ, b_Δ
        nn.init.uniform_(self.dt_proj.weight, -(rank**-0.5), rank**-0.5)
        with torch.no_grad():
            self.dt_proj.bias.copy_(init_dt_bias(d_inner))
        # S4D-real initialisation: A = -(1, 2, …, N) for every channel
        self.A_log = nn.Parameter(torch.log(torch.arange(1, d_state + 1, dtype=torch.float32)).repeat(d_inner, 1))
        self.D = nn.Parameter(torch.ones(d_inner))
        self.out_proj = nn.Linear(d_inner, d_model, bias=False)  # W_out

    def _selective(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """x: (b, n, D_in) -> Δ (b, n, D_in), A (D_in, N), B, C (b, n, N)."""
        delta, B, C = self.x_proj(x).split([self.rank, self.d_state, self.d_state], dim=-1)
        delta = F.softplus(self.dt_proj(delta))  # Δ
        return delta, -torch.exp(self.A_log), B, C

    def _mix(self, u: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        x_in, z = self.in_proj(u).chunk(2, dim=-1)  # (b, n, D_in) each
        x = F.silu(self.conv(x_in))
        delta, A, B, C = self._selective(x)
        y, h = selective_scan(x, delta, A, B, C, self.D, z, self.impl, self.chunk_size)  # (y + D x) ⊙ SiLU(z)
        return self.out_proj(y), {"conv": self.conv.window(x_in), "ssm": h}

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return self._mix(u)[0]

    def init_state(self, batch: int) -> dict[str, torch.Tensor]:
        w = self.A_log
        return {
            "conv": w.new_zeros(batch, w.shape[0], self.conv.width - 1),
            "ssm": w.new_zeros(batch, w.shape[0], self.d_state),
        }

    def prefill(self, u: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return self._mix(u)

    def step(self, u_t: torch.Tensor, state: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        x_in, z = self.in_proj(u_t).chunk(2, dim=-1)  # (b, 1, D_in)
        x, window = self.conv.step(x_in, state["conv"])
        x = F.silu(x)
        delta, A, B, C = self._selective(x)
        y, h = selective_scan(x, delta, A, B, C, self.D, z, "sequential", 1, h=state["ssm"])  # one token
        return self.out_proj(y), {"conv": window, "ssm": h}


def _validate(config: dict[str, Any]) -> None:
    """impl=chunked_c is the compiled CPU float32 kernel: refuse what it cannot run before anything is built."""
    if config["impl"] != COMPILED:
        return
    if config["device"] != "cpu" or config["dtype"] != "float32":
        raise ConfigError(
            f"impl={COMPILED} runs on CPU in float32, not device={config['device']} dtype={config['dtype']}; "
            "accepted there: sequential, chunked"
        )
    if kernels.load("selective_scan") is not None and config["d_state"] > state_max():
        raise ConfigError(f"d_state={config['d_state']} is above impl={COMPILED}'s {state_max()}; accepted: up to {state_max()}, or impl=chunked")


def resolve_impl(config: dict[str, Any], mode: str | None = None) -> Resolution:
    """impl=auto at this point: the same rule every call of the auto scan applies (fastest_scan); the kernel,
    with its backward, serves every mode, so the mode does not change the choice."""
    return Resolution(*fastest_scan(config["device"], config["dtype"], config["d_state"]))


def _cost(config: dict[str, Any], mode: str):
    """The cost of the form that runs: impl=auto costed as what it resolves to."""
    return mamba_cost({**config, "impl": resolve_impl(config, mode).impl} if config["impl"] == AUTO else config, mode)


@register(
    MechanismSpec(
        name="mamba",
        complexity={"prefill": "O(N·E·d·N_s) + O(N·d²) projections", "train": "O(N·E·d·N_s) + O(N·d²)",
                    "decode": "O(E·d·N_s + d²) per token", "state": "O(E·d·(N_s + d_conv)): SSM state + conv window"},
        family="ssm",
        summary=(
            "Mamba selective SSM block (input-dependent Δ, B, C; conv; SiLU gate): token-loop, chunked parallel scan, "
            "or that scan compiled (chunked_c: CPU float32, forward and backward); auto picks the fastest that runs"
        ),
        paper=Paper("Mamba: Linear-Time Sequence Modeling with Selective State Spaces", 2023, "2312.00752"),
        causal=True,
        defaults={"d_state": 16, "expand": 2, "d_conv": 4, "impl": AUTO, "chunk_size": 64},
        choices={"impl": IMPLS},
        validate=_validate,
        cost=_cost,
        resolve_impl=resolve_impl,
        measure=MeasureHints(loop_impls=("sequential",)),  # chunked loops 2C + c steps (chunked_c none), not n
        kernels=("selective_scan",),  # impl chunked_c (and auto where it resolves to chunked_c), and only it
        tests=TestHooks(overrides={"chunk_size": 5}),
        claims=(
            Claim("flops", "seq_len", 1.0, "forward", {"impl": "sequential"}),
            Claim("flops", "seq_len", 1.0, "forward", {"impl": "chunked"}),
            Claim("flops", "seq_len", 1.0, "train", {"impl": "chunked"}),
            Claim("flops", "d_state", 1.0, "forward", {"impl": "sequential"}),
            Claim("flops", "d_state", 1.0, "forward", {"impl": "chunked"}),
            Claim("flops", "seq_len", 1.0, "forward", {"impl": COMPILED}),
            Claim("flops", "seq_len", 1.0, "train", {"impl": COMPILED}),
            Claim("flops", "d_state", 1.0, "forward", {"impl": COMPILED}),
            Claim("state_bytes", "seq_len", 0.0, "decode"),
            Claim("flops", "seq_len", 0.0, "decode"),
        ),
    )
)
def build_mamba(config: dict[str, Any]) -> Mamba:
    if config["impl"] == COMPILED and kernels.load("selective_scan") is None:
        raise KernelUnsupported(f"impl={COMPILED} needs the compiled kernel selective_scan: {kernels.status('selective_scan')}")
    return Mamba(config["d_model"], config["d_state"], config["expand"], config["d_conv"], config["impl"], config["chunk_size"])
