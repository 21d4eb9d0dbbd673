"""Cost models of the shared sparse machinery (core.py), op by op, in the FLOP convention of analytic.py.

A plan's attention is described by its query grid (G groups of r queries, b·h of them) and its
parts, each (kind, L): the model counts the gathered score and value products, the one softmax
over ΣL, the sum of the parts, and what autograd runs backward (two products per matmul, a
scatter-add per gather, one add per extra use of q, k or v).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from effprof.cost_model import SOFTMAX_BACKWARD_FLOPS, SOFTMAX_FLOPS, Tally
from effprof.registry import Claim

PartShape = tuple[str, int]  # (kind, width L)


def projections(t: Tally, config: dict[str, Any], tokens: int, shared_qk: bool = False, scale_q: bool = True) -> None:
    """Q (K) V O projections, q·1/√d (scale_q=False: a fused kernel's `scale` does it), and shared-QK's k = q / ‖q‖."""
    dm, h, d = config["d_model"], config["n_heads"], config["head_dim"]
    inner = h * d
    t.linear(tokens, dm, inner)  # Q
    if not shared_qk:
        t.linear(tokens, dm, inner)  # K
    t.linear(tokens, dm, inner)  # V
    t.linear(tokens, inner, dm)  # O
    t.add(0, (1 if shared_qk else 2) * tokens * dm)  # dx: the input's gradients through Q, (K,) V are summed
    if scale_q:
        t.elementwise(tokens * inner)  # q · 1/√d
    if shared_qk:
        t.add(2 * tokens * inner, 0)  # ‖q‖: square and sum per element
        t.elementwise(tokens * inner, 1, 0)  # q / ‖q‖
        # backward of q / ‖q‖ as autograd runs it: div (4), mul (2), sum, neg, the two paths into q summed
        # (9 per element), and a zero-norm check per row
        t.add(0, 9 * tokens * inner + tokens * h)
        t.add(0, tokens * inner)  # q's gradients through the scores and through the keys are summed


def sparse_claims(fast_impls: tuple[str, ...], decode_state: float, decode_flops: float, selection: str = "") -> tuple[Claim, ...]:
    """The claims every sparse mechanism makes: its fast forms are linear in seq_len (FLOPs forward and train,
    forward peak memory), the masked reference is quadratic, and its decode state and per-token FLOPs grow as
    seq_len^decode_state and seq_len^decode_flops.

    `selection`: a content-based block choice scores every (query block, key block) pair, (n/B)²·d: its fast
    forms' FLOPs are then quadratic (and decode, amortized over a block, linear); the text says where that
    term takes over (the claims' note)."""
    flops = 2.0 if selection else 1.0
    fast = tuple(Claim(metric, "seq_len", exponent, mode, {"impl": impl}, note=selection and note)
                 for impl in fast_impls
                 for metric, mode, exponent, note in (("flops", "forward", flops, selection), ("flops", "train", flops, selection),
                                                      ("peak_bytes", "forward", flops, SELECTION_PEAK)))
    decode = Claim("flops", "seq_len", decode_flops + 1.0 if selection else decode_flops, "decode", note=selection and SELECTION_DECODE)
    return (*fast, Claim("flops", "seq_len", 2.0, "forward", {"impl": "masked"}),
            Claim("peak_bytes", "seq_len", 2.0, "forward", {"impl": "masked"}),
            Claim("state_bytes", "seq_len", decode_state, "decode"), decode)


# The block choice of block_sparse and topk_attention, measured on counts (effprof sweep --count-only, a fit of
# a·n + b·n² at n = 2K..32K): forward b = 0.252 (2·h·d/B² = 2·2·64/32²), a = 248,000 (block_sparse) and
# 216,000 (topk_attention); the terms cross at n ≈ 980,000 and 860,000 (train: 2.9 M and 2.6 M). At the
# test's block_size 3 and d_model 32 they cross near n ≈ 5,000.
SELECTION = ("quadratic above n ≈ 1,000,000 (train: ≈ 3,000,000) at the defaults (block_size 32, d_model 128; near n ≈ 5,000 "
             "at block_size 3), "
             "linear below: the block choice scores every (query block, key block) pair, (n/B)²·d")
SELECTION_PEAK = ("quadratic where the (n/B)²·h block-score matrix outgrows the linear buffers: counted at block_size 3, "
                  "d_model 32 it dominates from n ≈ 4,000; at the defaults (block_size 32) it does not show up to n = 32,768, "
                  "linear there")
SELECTION_DECODE = ("per token, amortized over a block: the choice at each block boundary scores n/B key-block means "
                    "(n·d/B² per token), linear; constant between boundaries (gen_len < block_size sees none)")


def decode_step_flops(config: dict[str, Any], keys: int) -> float:
    """One decode step: the projections of b tokens, then one query per head against `keys` keys."""
    b, h, d = config["batch"], config["n_heads"], config["head_dim"]
    t = Tally()
    projections(t, config, b)
    t.matmul(b * h, 1, d, keys)  # q·Kᵀ
    t.softmax(b * h * keys)
    t.matmul(b * h, 1, keys, d)  # weights · V
    return t.forward


def gathered_numel(kind: str, groups: float, rows: int, width: int) -> float:
    """Distinct gathered (key or value) rows per (b, h) for one part."""
    return {"shared": width, "group": groups * width, "row": groups * rows * width}[kind]


def attend_cost(t: Tally, config: dict[str, Any], groups: float, rows: int, parts: Sequence[PartShape],
                length: int, bias_parts: int = 0, with_lse: bool = False, query_gathered: bool = False) -> None:
    """core.attend over (b·h) × G × r queries; `length` n' is the padded token count of k and v."""
    bh, d = config["batch"] * config["n_heads"], config["head_dim"]
    queries = bh * groups * rows
    total = sum(width for _, width in parts)
    for kind, width in parts:
        t.add(bh + bh * gathered_numel(kind, groups, rows, width), 0)  # row numbers: head offset + position
        t.matmul(queries, 1, d, width)  # scores q·K_partᵀ
        t.matmul(queries, 1, width, d)  # weights · V_part
        t.add(0, 2 * bh * gathered_numel(kind, groups, rows, width) * d)  # gather backward: index-add into K and V
    t.add(bias_parts and queries * sum(w for _, w in parts[:bias_parts]), 0)  # + bias
    t.softmax(queries * total)
    t.elementwise(queries * d * (len(parts) - 1), 1, 0)  # Σ over parts
    extra = len(parts) - 1
    t.add(0, queries * d * extra)  # q's gradients from each part are summed
    t.add(0, 2 * bh * length * d * extra)  # k's and v's gradients from each part are summed
    if with_lse:
        t.add(3 * queries * total, 4 * queries * total)  # logsumexp; backward exp(s − lse)·g, summed into dS
    if query_gathered:
        t.add(bh + queries, 0)  # the query rows
        t.add(0, queries * d)  # the query gather's backward (index-add)


def fused_cost(t: Tally, config: dict[str, Any], groups: int, rows: int, widths: Sequence[int]) -> None:
    """attend.fused_plan: (b·h) × G × r queries against one gathered list of ΣL keys per group."""
    bh, d = config["batch"] * config["n_heads"], config["head_dim"]
    keys = groups * sum(widths)  # gathered rows per (b, h)
    pairs = bh * rows * keys  # every (query, slot) pair is computed, blocked ones too
    t.add(bh + bh * keys, 0)  # row numbers: head offset + position
    # torch's flash kernel: QKᵀ (2d), softmax (5), PV (2d) per pair; backward dV, dP, softmax', dQ, dK;
    # the gathers' backward index-adds into K and V
    t.add(pairs * (4.0 * d + SOFTMAX_FLOPS), pairs * (8.0 * d + SOFTMAX_BACKWARD_FLOPS) + 2 * bh * keys * d)


def masked_cost(t: Tally, config: dict[str, Any], n: int, heads_rows: float | None = None) -> None:
    """core.masked_attention: dense (n × n) scores, softmax and P V for b·h heads."""
    bh, d = config["batch"] * config["n_heads"], config["head_dim"]
    rows = heads_rows if heads_rows is not None else bh
    t.matmul(rows, n, d, n)  # S = Q Kᵀ
    t.softmax(rows * n * n)
    t.matmul(rows, n, n, d)  # P V
