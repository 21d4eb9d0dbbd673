"""The roofline time model: a lower bound on a point's time from its per-op counts and a machine's roofs.

Plain Python (no torch, no pandas): `measure` uses it with this machine's measured roofs, analysis and the
renderers with a named GPU's datasheet roofs (`--hardware`). The notation:

    op i         one aten op, called c_i times per call of the workload, with F_i FLOPs and B_i bytes in all
                 (FlopCounter's convention: B_i = every operand read once + every result written once)
    f_i, b_i     F_i / c_i, B_i / c_i: one call's FLOPs and bytes (its working set)
    P(f_i)       the compute roof of op i: for a matmul-class op (MATMUL_OPS), the matmul peak measured at
                 the size nearest below f_i (small matmuls run further from the peak than large ones); for a
                 transcendental op (TRANSCENDENTAL_OPS), the measured elementwise-exp rate; for any other op,
                 the matmul peak (a vector op's FLOPs are never its limit before its bytes)
    W(b_i)       the memory roof of op i: the bandwidth measured with a working set of the first measured size
                 at or above b_i (in L1/L2, in the last-level cache, beyond it); beyond the largest, the largest's
    o            the fixed cost of one dispatched op (CPU: the dispatcher and the kernel's call; GPU: the launch)

    t_i   = c_i · max(f_i / P(f_i), b_i / W(b_i))  +  c_i · o
    bound = Σ_i t_i

The three terms a point reports are summed over ops by which term each op's max picked:
compute_s = Σ over compute-limited ops of F_i / P, memory_s = Σ over memory-limited ops of B_i / W,
overhead_s = o · Σ c_i; the point's `limit` is the largest of the three. The overhead term is in the model
because on a CPU at 1K tokens a mechanism's small ops (views, reshapes, elementwise steps on a few KiB) cost
more in dispatch than in arithmetic or traffic; every op dispatched counts (views too: each is a call),
none twice. What the model leaves out, so that it stays a bound: reuse across ops (each op's traffic is its
own operands and results: data left in a cache by the previous op is read at that cache's bandwidth only
when it fits there), overlap between ops (none: t_i add), and Python time outside the dispatcher.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from effprof.store.records import LIMITS  # compute | memory | overhead: the record fields' one vocabulary

# Ops whose FLOPs run at the matmul (or tensor-core) rate: products and the fused attention kernels built on them.
MATMUL_OPS = frozenset("""
mm bmm addmm baddbmm addbmm matmul linear convolution convolution_backward _convolution
_scaled_dot_product_flash_attention_for_cpu _scaled_dot_product_flash_attention_for_cpu_backward
_scaled_dot_product_flash_attention _scaled_dot_product_flash_attention_backward
_scaled_dot_product_efficient_attention _scaled_dot_product_efficient_attention_backward
_scaled_dot_product_cudnn_attention _scaled_dot_product_cudnn_attention_backward
""".split())

# Ops that evaluate a transcendental function per element (exp, log, ...): their FLOPs run at the measured
# elementwise-exp rate, not at the matmul peak (an exp costs tens of instructions; FLOP convention: 1).
TRANSCENDENTAL_OPS = frozenset("""
exp exp2 expm1 log log2 log1p sigmoid silu elu gelu tanh softplus mish erf erfinv sin cos pow rsqrt sqrt
sigmoid_backward silu_backward elu_backward tanh_backward softplus_backward gelu_backward mish_backward
_softmax _log_softmax _safe_softmax _softmax_backward_data _log_softmax_backward_data logsumexp logcumsumexp
xlogy logit atan2 polar
""".split())



@dataclass(frozen=True)
class Roofs:
    """A machine's ceilings, as the model reads them.

    matmul: (FLOPs of one call, FLOP/s) pairs, ascending in FLOPs: the matmul rate measured at that size; a
        datasheet entry gives one pair (0, peak).
    bandwidth: (working-set bytes, bytes/s) pairs, ascending in bytes: the bandwidth measured with that much
        data in play; a datasheet entry gives one pair (0, HBM bandwidth).
    transcendental_flops_per_s: the rate of transcendental ops (None: the matmul peak, as on a datasheet that
        gives none; a GPU's special-function units rarely limit before its memory does).
    overhead_s: the fixed cost of one dispatched op (0 on a datasheet: none is stated).
    """

    matmul: tuple[tuple[float, float], ...]
    bandwidth: tuple[tuple[float, float], ...]
    transcendental_flops_per_s: float | None = None
    overhead_s: float = 0.0
    name: str = ""

    def __post_init__(self) -> None:
        if not self.matmul or not self.bandwidth:
            raise ValueError("a machine's roofs need at least one matmul peak and one bandwidth")
        for what, pairs in (("matmul", self.matmul), ("bandwidth", self.bandwidth)):
            if any(not rate > 0 for _, rate in pairs):
                raise ValueError(f"every {what} rate must be positive")
            if list(pairs) != sorted(pairs):
                raise ValueError(f"the {what} pairs must ascend in size")

    @property
    def peak_flops_per_s(self) -> float:
        return max(rate for _, rate in self.matmul)

    @property
    def beyond_cache_bytes_per_s(self) -> float:
        return self.bandwidth[-1][1]

    @property
    def in_cache_bytes_per_s(self) -> float:
        return max(rate for _, rate in self.bandwidth)

    def compute_rate(self, op: str, flops_per_call: float) -> float:
        if op in TRANSCENDENTAL_OPS and self.transcendental_flops_per_s:
            return self.transcendental_flops_per_s
        if op not in MATMUL_OPS:
            return self.peak_flops_per_s
        sizes = [size for size, _ in self.matmul]
        at = max(bisect.bisect_right(sizes, flops_per_call) - 1, 0)  # the largest measured size not above this call
        return self.matmul[at][1]

    def memory_rate(self, bytes_per_call: float) -> float:
        sizes = [size for size, _ in self.bandwidth]
        at = bisect.bisect_left(sizes, bytes_per_call)  # the first measured working set at or above this call's
        return self.bandwidth[min(at, len(sizes) - 1)][1]


@dataclass(frozen=True)
class OpCount:
    """One op's totals per call of the workload."""

    flops: float
    bytes: float
    calls: float


@dataclass
class Bound:
    """A point's roofline bound and its three terms (seconds), and which term limits it."""

    time_s: float = 0.0
    compute_s: float = 0.0
    memory_s: float = 0.0
    overhead_s: float = 0.0
    by_op: dict[str, float] = field(default_factory=dict)

    @property
    def limit(self) -> str:
        terms = {"compute": self.compute_s, "memory": self.memory_s, "overhead": self.overhead_s}
        return max(LIMITS, key=lambda k: terms[k])

    def fields(self, prefix: str = "roofline") -> dict[str, Any]:
        """The record fields of this bound (records.Record: roofline_bound_s, ..., roofline_limit)."""
        return {f"{prefix}_bound_s": self.time_s, f"{prefix}_compute_s": self.compute_s, f"{prefix}_memory_s": self.memory_s,
                f"{prefix}_overhead_s": self.overhead_s, f"{prefix}_limit": self.limit}


def op_counts(ops: Mapping[str, Mapping[str, Any]]) -> dict[str, OpCount]:
    """A record's `ops` field ({op: {flops, bytes, calls}}) as OpCounts; entries missing a figure count it as 0."""
    out = {}
    for name, figures in ops.items():
        out[name] = OpCount(float(figures.get("flops") or 0.0), float(figures.get("bytes") or 0.0), float(figures.get("calls") or 0.0))
    return out


def bound(ops: Mapping[str, OpCount], roofs: Roofs, overhead: bool = True) -> Bound:
    """The model above, op by op. `overhead=False` leaves the dispatch term out (a datasheet states none)."""
    result = Bound()
    for name, op in ops.items():
        if op.calls <= 0:
            continue
        flops_per_call, bytes_per_call = op.flops / op.calls, op.bytes / op.calls
        compute = op.flops / roofs.compute_rate(name, flops_per_call)
        memory = op.bytes / roofs.memory_rate(bytes_per_call)
        fixed = op.calls * roofs.overhead_s if overhead else 0.0
        if compute >= memory:
            result.compute_s += compute
        else:
            result.memory_s += memory
        result.overhead_s += fixed
        result.by_op[name] = max(compute, memory) + fixed
    result.time_s = result.compute_s + result.memory_s + result.overhead_s
    return result


def totals_bound(flops: float, bytes_moved: float, roofs: Roofs) -> Bound:
    """The coarse bound of a record without per-op counts: the whole point as one op, max(F/P, B/W) at the
    peak and the beyond-cache bandwidth (no overhead term: its op count is unknown)."""
    compute, memory = flops / roofs.peak_flops_per_s, bytes_moved / roofs.beyond_cache_bytes_per_s
    result = Bound(compute_s=compute if compute >= memory else 0.0, memory_s=memory if memory > compute else 0.0)
    result.time_s = max(compute, memory)
    return result
