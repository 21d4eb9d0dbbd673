"""S4: structured state spaces (Gu, Goel & Ré 2022) and their diagonal form S4D (Gu et al. 2022).

Notation (the roadmap's, week 8). Each of the H = d_model channels u(t) drives its own linear system

    continuous:    x'(t) = A x(t) + B u(t),        y(t) = C x(t) + D u(t)
    discrete:      x_k = Ā x_{k-1} + B̄ u_k,        y_k = C x_k + D u_k
      zero-order hold:  Ā = exp(ΔA),                    B̄ = (ΔA)⁻¹(exp(ΔA) - I) · ΔB
      bilinear:         Ā = (I - Δ/2·A)⁻¹(I + Δ/2·A),   B̄ = (I - Δ/2·A)⁻¹ ΔB
    convolution:   K = (CB̄, CĀB̄, …, CĀ^{L-1}B̄),   y = u * K + D u

and the layer is  out = GELU(y) Wᴼ.

A starts as HiPPO-LegS (hippo.py) in the eigenbasis of its normal part, A = diag(Λ) - P P*; then
- param=dplr (S4): A = diag(Λ) - P P*, Λ, P learned; bilinear transform only;
- param=diag (S4D): A = diag(Λ), the low-rank term dropped; either discretisation.
The state x is complex; y_k = Re(C x_k) + D u_k. HiPPO-LegS's N eigenvalues come in conjugate pairs, and for a
real input the modes of a pair carry conjugate states. S4D (param=diag) keeps one mode of each pair, as the
authors' code does: N/2 complex numbers per channel, y_k = 2·Re(C x_k) + D u_k over them (half the state
and half the kernel work of keeping all N, the same function: tests/test_ssm.py). d_state = N is even there.
param=dplr keeps all N modes (its low-rank term P P* couples them; the authors' DPLR kernel expands the pairs
back to N for its Cauchy sums as well): N complex numbers per channel, y_k = Re(C x_k) + D u_k.

Glossary: b batch, L = n seq_len, H d_model (channels), N d_state, Δ per-channel step (learned, log-uniform
in [10⁻³, 10⁻¹] at init), T ≈ √L the split of the Vandermonde index l = T·j + r.

Forms (config `impl`), the same function:
- recurrent: the scan x_k = Āx_{k-1} + B̄u_k, one token at a time. O(b·L·H·N) FLOPs (DPLR steps apply
  (I - Δ/2·A)⁻¹ by Woodbury in O(N)).
- fft: compute the kernel K (diag: a Vandermonde product; dplr: a Cauchy kernel at the roots of unity and an
  inverse FFT, see s4_kernel.py), then y = u * K by FFT: O(b·H·L log L + H·N·L) FLOPs, no loop over tokens.
  D u rides in the kernel (K_0 + D), and the FFTs run along the time axis of (b, L, H): no transposes.

Decode keeps x: b·H·N complex numbers, constant in n; a step costs O(H·N).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from effprof.config import ConfigError, declare_key
from effprof.mechanisms.base import Mechanism
from effprof.mechanisms.ssm.hippo import conjugate_half, legs_dplr
from effprof.mechanisms.ssm.s4_cost import s4_cost
from effprof.mechanisms.ssm.s4_kernel import DPLR, Diagonal, fft_conv
from effprof.registry import Claim, MeasureHints, MechanismSpec, Paper, register
from effprof.runtime.counting import with_data

IMPLS = ("recurrent", "fft")
PARAMS = ("diag", "dplr")
DISCRETIZATIONS = ("bilinear", "zoh")

declare_key("param", str, "SSM state-matrix parameterisation (S4: diag = S4D, dplr = diagonal plus low rank)")
declare_key("discretization", str, "continuous-to-discrete rule of an SSM: zoh (zero-order hold) or bilinear")


class S4(Mechanism):
    def __init__(self, d_model: int, d_state: int, param: str, discretization: str, impl: str):
        super().__init__()
        H, N = d_model, d_state
        self.param, self.discretization, self.impl = param, discretization, impl
        with with_data():  # HiPPO's N×N eigenbasis needs its values, also when only counting
            Lambda, P, B, _ = legs_dplr(N)
            if param == "diag":  # one mode of each conjugate pair: M = N/2 (the paper's S4D)
                Lambda, B = conjugate_half(Lambda, B)
        # Λ = -exp(log_neg_real) + i·imag keeps Re Λ < 0 (a stable system) while learning.
        self.log_neg_real = nn.Parameter(torch.log(-Lambda.real).float().repeat(H, 1))  # (H, N)
        self.imag = nn.Parameter(Lambda.imag.float().repeat(H, 1))  # (H, N)
        self.B = nn.Parameter(torch.view_as_real(B).float().repeat(H, 1, 1))  # (H, N, 2): real pairs of ℂ
        self.P = nn.Parameter(torch.view_as_real(P).float().repeat(H, 1, 1)) if param == "dplr" else None
        self.C = nn.Parameter(torch.randn(H, Lambda.shape[0], 2) * 0.5**0.5)  # C ~ CN(0, 1): (H, M, 2)
        self.D = nn.Parameter(torch.randn(H))
        self.log_dt = nn.Parameter(torch.empty(H).uniform_(math.log(1e-3), math.log(1e-1)))  # log Δ
        self.out_proj = nn.Linear(H, H, bias=False)  # Wᴼ

    def ssm(self) -> Diagonal | DPLR:
        """The discretised per-channel SSMs, in complex64."""
        Lambda = torch.complex(-torch.exp(self.log_neg_real.float()), self.imag.float())  # (H, N)
        B, C = torch.view_as_complex(self.B.float()), torch.view_as_complex(self.C.float())
        dt = torch.exp(self.log_dt.float())  # Δ: (H,)
        if self.param == "diag":
            return Diagonal(Lambda, B, C, dt, self.discretization, pairs=True)
        return DPLR(Lambda, torch.view_as_complex(self.P.float()), B, C, dt)

    def _mix(self, x: torch.Tensor, with_state: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        u = x.float()  # (b, L, H), time-major throughout
        ssm = self.ssm()
        D = self.D.float()  # (H,)
        if self.impl == "recurrent":
            state = self.init_state(x.shape[0])  # x_0 = 0: (b, H, N)
            outputs = []
            for u_k in u.unbind(1):  # (b, H)
                state = ssm.step(state, u_k)
                outputs.append(ssm.readout(state))
            y = torch.stack(outputs, dim=1) + D * u  # + D u: (b, L, H)
        else:
            K = ssm.kernel(u.shape[1])  # (H, L)
            K = torch.cat([K[:, :1] + D[:, None], K[:, 1:]], dim=1)  # + D u as the kernel's first tap
            y = fft_conv(u, K)  # (b, L, H)
            state = ssm.final_state(u.transpose(1, 2)) if with_state else None
        return self.out_proj(F.gelu(y).to(x.dtype)), state

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._mix(x, with_state=False)[0]

    def init_state(self, batch: int) -> torch.Tensor:
        return torch.zeros(batch, *self.imag.shape, dtype=torch.complex64, device=self.imag.device)

    def prefill(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self._mix(x, with_state=True)

    def step(self, x_t: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        u = x_t[:, 0].float()  # (b, H)
        ssm = self.ssm()
        state = ssm.step(state, u)
        y = ssm.readout(state) + self.D.float() * u  # (b, H)
        return self.out_proj(F.gelu(y)[:, None].to(x_t.dtype)), state


def _validate(config: dict[str, Any]) -> None:
    if config["param"] == "diag" and config["d_state"] % 2:
        raise ConfigError(
            f"d_state={config['d_state']} is odd; param='diag' keeps N/2 conjugate pairs of HiPPO modes: accepted: an even d_state"
        )
    if config["param"] == "dplr" and config["discretization"] != "bilinear":
        raise ConfigError(
            f"discretization={config['discretization']!r} is not accepted with param='dplr' (S4's DPLR kernel "
            "exists for the bilinear transform only); accepted: bilinear"
        )


@register(
    MechanismSpec(
        name="s4",
        complexity={"prefill": "O(N·log N·d) fft; O(N·N_s·d) recurrent", "train": "same as prefill", "decode": "O(N_s·d) per token", "state": "O(N_s·d)"},
        family="ssm",
        summary="S4/S4D layer from HiPPO-LegS: diagonal or DPLR A, ZOH or bilinear; recurrent scan or FFT convolution",
        paper=Paper("Efficiently Modeling Long Sequences with Structured State Spaces", 2022, "2111.00396"),
        causal=True,
        defaults={"d_state": 16, "param": "diag", "discretization": "bilinear", "impl": "fft"},
        choices={"impl": IMPLS, "param": PARAMS, "discretization": DISCRETIZATIONS},
        cost=s4_cost,
        validate=_validate,
        measure=MeasureHints(loop_impls=("recurrent",)),
        claims=(
            Claim("flops", "seq_len", 1.0, "forward", {"impl": "recurrent"}),
            Claim("flops", "seq_len", 1.0, "forward", {"impl": "fft"}),  # n log n: the fit models the log factor
            Claim("flops", "seq_len", 1.0, "train", {"impl": "recurrent"}),
            Claim("flops", "d_state", 1.0, "forward", {"impl": "recurrent"}),
            Claim("state_bytes", "seq_len", 0.0, "decode"),
            Claim("flops", "seq_len", 0.0, "decode"),
        ),
    )
)
def build_s4(config: dict[str, Any]) -> S4:
    return S4(config["d_model"], config["d_state"], config["param"], config["discretization"], config["impl"])
