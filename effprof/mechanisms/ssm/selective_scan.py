"""Mamba's selective scan, two ways: the token loop and a chunked parallel scan. Glossary in mamba.py.

Both compute, for every channel d and state index s (A: (D_in, N) diagonal, Δ, B, C data-dependent):

    h_t = exp(Δ_t A) ⊙ h_{t-1} + (Δ_t x_t) B_t          h: (D_in, N) per sequence
    y_t = h_t C_t

- `sequential_scan`: the obvious loop over t, as in the paper's reference scan (mamba-minimal).
- `chunked_scan`: a three-phase parallel scan (reduce, scan the carries, add them back). The n tokens are cut
  into c = ⌈n/C⌉ lanes of C consecutive tokens, and all lanes are worked on at once:
    1. each lane runs the recurrence from h = 0: C steps, each on all c lanes together (c·D_in·N values);
    2. the state entering lane k is H_k = exp(A·ΣΔ over lane k-1) ⊙ H_{k-1} + (lane k-1's end state):
       c steps on one state each;
    3. each output adds what its lane's incoming state contributes, C_t exp(A·Σ_{s≤t in lane} Δ_s) H_k:
       C steps on all lanes together.
  Python runs 2C + c steps instead of n; every decay is a product of factors ≤ 1 (exact, stable in fp32),
  and no step holds more than c·D_in·N values, never (n, D_in, N).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def sequential_scan(
    x: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor, h: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """x, Δ: (b, n, D_in); A: (D_in, N); B, C: (b, n, N); h: (b, D_in, N) -> y: (b, n, D_in), h_n."""
    outputs = []
    for x_t, delta_t, B_t, C_t in zip(x.unbind(1), delta.unbind(1), B.unbind(1), C.unbind(1)):
        Abar = torch.exp(delta_t[..., None] * A)  # Ā_t = exp(Δ_t A): (b, D_in, N)
        h = Abar * h + (delta_t * x_t)[..., None] * B_t[:, None, :]  # + B̄_t x_t
        outputs.append((h @ C_t[..., None])[..., 0])  # y_t = h_t C_t: (b, D_in)
    return torch.stack(outputs, dim=1), h


def chunked_scan(
    x: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor, chunk_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The same recurrence from h_0 = 0 by the three-phase lane scan -> y: (b, n, D_in), h_n: (b, D_in, N)."""
    b, n, d = x.shape
    size = min(chunk_size, n)  # C
    pad = (-n) % size
    u = delta * x  # Δ_t x_t: (b, n, D_in)
    if pad:  # Δ = 0 and u = 0 leave h unchanged: padding the end changes nothing before it
        delta, u, B, C = (F.pad(t, (0, 0, 0, pad)) for t in (delta, u, B, C))
    lanes = (n + pad) // size  # c
    At = A.t()  # (N, D_in): states before channels, so sums over N run along contiguous rows

    def positions(t: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(b, c·C, ·) -> C slices (b, c, ·): position j of every lane."""
        return t.view(b, lanes, size, t.shape[-1]).unbind(2)

    # 1. every lane from h = 0
    h = x.new_zeros(b, lanes, At.shape[0], d)  # (b, c, N, D_in)
    outputs = []
    for delta_j, u_j, B_j, C_j in zip(positions(delta), positions(u), positions(B), positions(C)):
        h = torch.addcmul(torch.exp(delta_j[:, :, None, :] * At) * h, B_j[..., None], u_j[:, :, None, :])  # (b, c, N, D_in)
        outputs.append((C_j[:, :, None, :] @ h)[:, :, 0])  # C_t h_t: (b, c, D_in)
    if lanes == 1:  # one lane: its own scan is the answer
        return torch.stack(outputs, dim=2).reshape(b, size, d)[:, :n], h[:, 0].transpose(1, 2).contiguous()
    # 2. the state entering each lane
    cumulative = delta.view(b, lanes, size, d).cumsum(2)  # Σ_{s≤t in lane} Δ_s: (b, c, C, D_in)
    lane_decay = torch.exp(cumulative[:, :, -1, None, :] * At)  # exp(A·ΣΔ over the lane): (b, c, N, D_in)
    carry = x.new_zeros(b, At.shape[0], d)  # (b, N, D_in)
    incoming = []
    # unbind, not [:, k]: its backward is one stack, where c selects would each add a full-size gradient
    for decay_k, end_k in zip(lane_decay.unbind(1), h.unbind(1)):
        incoming.append(carry)
        carry = decay_k * carry + end_k
    entering = torch.stack(incoming, dim=1)  # H_k: (b, c, N, D_in)
    # 3. what the incoming state adds to each output
    for j, (cumulative_j, C_j) in enumerate(zip(cumulative.unbind(2), positions(C))):
        decayed = torch.exp(cumulative_j[:, :, None, :] * At) * entering  # (b, c, N, D_in)
        outputs[j] = outputs[j] + (C_j[:, :, None, :] @ decayed)[:, :, 0]
    y = torch.stack(outputs, dim=2).reshape(b, lanes * size, d)[:, :n]
    return y, carry.transpose(1, 2).contiguous()
