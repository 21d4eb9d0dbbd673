"""State-space duality (SSD, Mamba-2): one SSM with a scalar decay per head, three ways. Glossary in mamba2.py.

Per head, with log-decays a_t = Δ_t·A ≤ 0, inputs X_t = Δ_t x_t ∈ ℝᴾ and B_t, C_t ∈ ℝᴺ shared by the heads:

    h_t = exp(a_t) h_{t-1} + X_t B_tᵀ            h: (P, N)
    y_t = h_t C_t

Unrolled, y_t = Σ_{s≤t} exp(a_{s+1} + … + a_t) (C_tᵀ B_s) X_s, i.e. Y = (L ∘ C Bᵀ) X with the 1-semiseparable
mask L_ts = exp(segsum(a)_ts) for s ≤ t, 0 above the diagonal.

- `recurrent`: the token loop over h_t. O(n·P·N) per head, n Python steps.
- `quadratic`: the "attention-like" dual form (L ∘ C Bᵀ) X. O(n²·(N + P)) per head.
- `chunked`: the SSD block decomposition over chunks of Q tokens:
    1. diagonal blocks: Y_diag = (L_c ∘ C_c B_cᵀ) X_c inside each chunk (quadratic in Q);
    2. each chunk's final state from its own inputs: S_c = Σ_s exp(a_{s+1..end}) X_s B_sᵀ;
    3. states passed between chunks: H_{c+1} = exp(Σ_chunk a) H_c + S_c (a loop over n/Q chunks);
    4. off-diagonal blocks: Y_off,t = exp(a_{start..t}) C_tᵀ H_c, the incoming state read out.
  O(n·Q·(N + P) + n·P·N) per head, no loop over tokens.

Precision of `chunked` (as of the authors' own chunked reference, ssd_minimal_discrete): steps 1 and 2 take
exp(cumsum_t − cumsum_s) inside a chunk, a difference of two running sums. Every exponent is ≤ 0 (nothing
overflows), but each running sum carries a rounding error of about u·|cumsum| (u = 2⁻²⁴ in fp32), which the
difference keeps even where it is small: an entry of L has a relative error of about u·|Σ_chunk a|. So the
output's error, relative to its largest value, is at most about u·(1 + max over chunks of |Σ_{t in chunk} a_t|):
rounding for mild decays; with extreme ones (|Σ_chunk a| ≈ 10³, e.g. Δ·A ≈ −60 per token over 16 tokens)
about 6e-5 in fp32 (tests/test_ssm.py checks this bound). `quadratic` (segsum, no differences) and
`recurrent` do not lose these digits; in fp64 the loss is negligible.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def segsum(a: torch.Tensor) -> torch.Tensor:
    """a: (..., T) -> (..., T, T) with entry [t, s] = a_{s+1} + … + a_t for s ≤ t, -∞ above (stable: no differences)."""
    T = a.shape[-1]
    repeated = a[..., None].expand(*a.shape, T)  # [t, s] = a_t
    on_or_above = torch.ones(T, T, dtype=torch.bool, device=a.device).triu()
    sums = repeated.masked_fill(on_or_above, 0).cumsum(dim=-2)  # Σ_{s < k ≤ t} a_k
    return sums.masked_fill(on_or_above.triu(1), float("-inf"))


def recurrent_ssd(
    X: torch.Tensor, a: torch.Tensor, B: torch.Tensor, C: torch.Tensor, h: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """X: (b, H, n, P); a: (b, H, n); B, C: (b, n, N); h: (b, H, P, N) -> y: (b, H, n, P), h_n."""
    outputs = []
    for X_t, a_t, B_t, C_t in zip(X.unbind(2), a.unbind(2), B.unbind(1), C.unbind(1), strict=False):
        h = torch.exp(a_t)[..., None, None] * h + X_t[..., None] * B_t[:, None, None, :]  # (b, H, P, N)
        outputs.append((h @ C_t[:, None, :, None])[..., 0])  # h_t C_t: (b, H, P)
    return torch.stack(outputs, dim=2), h


def quadratic_ssd(X: torch.Tensor, a: torch.Tensor, B: torch.Tensor, C: torch.Tensor) -> torch.Tensor:
    """Y = (L ∘ C Bᵀ) X with the whole (n × n) mask per head -> (b, H, n, P)."""
    L = torch.exp(segsum(a))  # (b, H, n, n)
    scores = C @ B.transpose(-2, -1)  # C Bᵀ: (b, n, n), shared by the heads
    return (L * scores[:, None]) @ X


def final_state(X: torch.Tensor, a: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """h_n = Σ_s exp(a_{s+1} + … + a_n) X_s B_sᵀ, the state after the sequence -> (b, H, P, N)."""
    to_end = F.pad(a[..., 1:].flip(-1).cumsum(-1).flip(-1), (0, 1))  # a_{s+1} + … + a_n, no differences: (b, H, n)
    return (X * torch.exp(to_end)[..., None]).transpose(-2, -1) @ B[:, None]


def chunked_ssd(
    X: torch.Tensor, a: torch.Tensor, B: torch.Tensor, C: torch.Tensor, chunk_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The SSD block decomposition from h_0 = 0 -> y: (b, H, n, P), h_n: (b, H, P, N)."""
    b, H, n, P = X.shape
    Q = min(chunk_size, n)
    pad = (-n) % Q
    if pad:  # a = 0 (no decay) and X = B = C = 0 leave the state and earlier outputs unchanged
        X, a = F.pad(X, (0, 0, 0, pad)), F.pad(a, (0, pad))
        B, C = F.pad(B, (0, 0, 0, pad)), F.pad(C, (0, 0, 0, pad))
    c = (n + pad) // Q
    X = X.reshape(b, H, c, Q, P)
    a = a.reshape(b, H, c, Q)
    B, C = B.reshape(b, 1, c, Q, -1), C.reshape(b, 1, c, Q, -1)  # (b, 1, c, Q, N): broadcast over heads
    a_cumsum = a.cumsum(-1)  # (b, H, c, Q)
    # 1. diagonal blocks; inside a chunk segsum(a)_ts = cumsum_t - cumsum_s (relative error ≈ u·|Σ_chunk a|: above)
    above = torch.ones(Q, Q, dtype=torch.bool, device=a.device).triu(1)
    L = torch.exp((a_cumsum[..., :, None] - a_cumsum[..., None, :]).masked_fill(above, float("-inf")))  # (b, H, c, Q, Q)
    Y = (L * (C @ B.transpose(-2, -1))) @ X  # (b, H, c, Q, P)
    # 2. each chunk's final state from its own inputs
    to_end = torch.exp(a_cumsum[..., -1:] - a_cumsum)  # exp(a_{s+1} + … + a_end): (b, H, c, Q)
    states = (X * to_end[..., None]).transpose(-2, -1) @ B  # Σ_s exp(…) X_s B_sᵀ: (b, H, c, P, N)
    if c == 1:  # one chunk: the diagonal block is everything
        return Y.reshape(b, H, Q, P)[:, :, :n], states[:, :, 0]
    # 3. pass states between chunks (unbind: one stack in the backward, not c selects). The loop body is the
    # recurrence's two ops and nothing else (decays shaped for broadcasting once, outside it): at 1M tokens it
    # runs 16K times, and under count-only every op costs a FakeTensor dispatch
    chunk_decay = torch.exp(a_cumsum[..., -1])[..., None, None]  # (b, H, c, 1, 1)
    carry = X.new_zeros(b, H, P, B.shape[-1])
    incoming = []
    for decay_c, state_c in zip(chunk_decay.unbind(2), states.unbind(2), strict=False):
        incoming.append(carry)
        carry = decay_c * carry + state_c  # (b, H, 1, 1) * (b, H, P, N) + (b, H, P, N)
    entering = torch.stack(incoming, dim=2)  # H_c: (b, H, c, P, N)
    # 4. off-diagonal blocks: the incoming state read out at each position
    Y = Y + (C @ entering.transpose(-2, -1)) * torch.exp(a_cumsum)[..., None]  # (b, H, c, Q, P)
    return Y.reshape(b, H, c * Q, P)[:, :, :n], carry
