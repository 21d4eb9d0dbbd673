"""Counting FLOPs at the op dispatcher.

Convention (ARCHITECTURE.md § FLOP convention): a multiply-add is 2 FLOPs; an elementwise arithmetic op or
a transcendental is 1 FLOP per output element; a reduction is 1 FLOP per input
element. Data movement (views, copies, casts, indexing, concatenation, masks
selected with `where`) is 0.

`FlopCounter` is a TorchDispatchMode, as torch.utils.flop_counter.FlopCounterMode
is. It counts what FlopCounterMode counts as 0 or counts otherwise: the fused
attention kernels of CPU and CUDA (with causal masking), softmax, layer norms,
cumsum, FFT, elementwise ops and reductions. An op it has no formula for, whose
author registered one with torch.utils.flop_counter (`register_flop_formula`, as
effprof's compiled kernels do), is counted by that formula.
Every op it meets is classified: an op with no formula and not known to be free is
reported in `unknown_ops`, so a missed op is visible, never silently 0.

Composite ops (`a fused kernel that does several things`) get a per-element count
written next to their formula, e.g. softmax = max, subtract, exp, sum, divide = 5.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch._ops import OpOverload, OpOverloadPacket
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from effprof.cost_model import SOFTMAX_BACKWARD_FLOPS, SOFTMAX_FLOPS, causal_pairs

aten = torch.ops.aten

Formula = Callable[[tuple, dict, Any], float]


def _numel(x: Any) -> int:
    if isinstance(x, torch.Tensor):
        return x.numel()
    if isinstance(x, (tuple, list)):
        return sum(_numel(t) for t in x)
    return 0


def _first(out: Any) -> torch.Tensor:
    return out[0] if isinstance(out, (tuple, list)) else out


def _is_complex(x: Any) -> bool:
    return isinstance(x, torch.Tensor) and x.is_complex()


def per_output(k: float) -> Formula:
    """k FLOPs per element of the first output (complex elements count as real ops)."""

    def formula(args: tuple, kwargs: dict, out: Any) -> float:
        o = _first(out)
        return k * o.numel() * (_complex_factor(args, o) if k else 1)

    return formula


def _complex_factor(args: tuple, out: torch.Tensor) -> float:
    # A complex multiply is 4 real multiplies + 2 adds = 6 FLOPs; a complex add is 2.
    return 2.0 if out.is_complex() or any(_is_complex(a) for a in args) else 1.0


def per_input(k: float) -> Formula:
    """k FLOPs per element of the first input (reductions)."""

    def formula(args: tuple, kwargs: dict, out: Any) -> float:
        return k * _numel(args[0])

    return formula


def _complex_mul(args: tuple, kwargs: dict, out: Any) -> float:
    o = _first(out)
    return (6.0 if o.is_complex() else 1.0) * o.numel()


def _registered(packet: OpOverloadPacket) -> Formula | None:
    """An op effprof has no formula for, whose author registered one with torch.utils.flop_counter
    (its `register_flop_formula`, as effprof's own compiled kernels do)."""
    if packet not in flop_registry:
        return None
    count = flop_registry[packet]
    return lambda args, kwargs, out: float(count(*args, out_val=out, **kwargs))


def _addmm(args: tuple, kwargs: dict, out: Any) -> float:
    # bias + mat1 @ mat2: 2mkn for the product, mn for the add.
    bias, m1, m2 = args[:3]
    m, k = m1.shape
    n = m2.shape[1]
    return 2.0 * m * k * n + m * n


def _baddbmm(args: tuple, kwargs: dict, out: Any) -> float:
    b, m, k = args[1].shape
    n = args[2].shape[2]
    return 2.0 * b * m * k * n + b * m * n


def _mm(args: tuple, kwargs: dict, out: Any) -> float:
    m, k = args[0].shape
    n = args[1].shape[1]
    return 2.0 * m * k * n * (4 if args[0].is_complex() else 1)


def _bmm(args: tuple, kwargs: dict, out: Any) -> float:
    b, m, k = args[0].shape
    n = args[1].shape[2]
    return 2.0 * b * m * k * n * (4 if args[0].is_complex() else 1)


def _convolution(args: tuple, kwargs: dict, out: Any) -> float:
    # out[b, c_out, l] = Σ_{c_in in group, j < k} w * x (+ bias): 2·(c_in/groups)·k per output.
    x, w, bias = args[0], args[1], args[2]
    o = _first(out)
    groups = args[8] if len(args) > 8 else kwargs.get("groups", 1)
    transposed = args[6] if len(args) > 6 else kwargs.get("transposed", False)
    if transposed:
        macs = x.numel() * w.shape[1] * math.prod(w.shape[2:])
    else:
        macs = o.numel() * (x.shape[1] // groups) * math.prod(w.shape[2:])
    return 2.0 * macs + (o.numel() if bias is not None else 0)


def _convolution_backward(args: tuple, kwargs: dict, out: Any) -> float:
    # grad_input and grad_weight each cost what the forward did; grad_bias is a reduction.
    grad_out, x, w = args[0], args[1], args[2]
    groups = args[9] if len(args) > 9 else 1
    mask = args[10] if len(args) > 10 else (True, True, True)
    macs = grad_out.numel() * (x.shape[1] // groups) * math.prod(w.shape[2:])
    flops = 0.0
    if mask[0]:
        flops += 2.0 * macs
    if mask[1]:
        flops += 2.0 * macs
    if mask[2]:
        flops += grad_out.numel()
    return flops


def _attention_shapes(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> tuple[int, int, int, int, int]:
    b, h, n_q, d = q.shape
    n_k, d_v = k.shape[-2], v.shape[-1]
    return b * h, n_q, n_k, d, d_v


def _attention(causal_at: int) -> Formula:
    """Fused attention: QKᵀ (2d), softmax (5), PV (2d_v) per computed (query, key) pair.

    `causal_at`: the position of the kernel's is_causal argument (the CPU and CUDA kernels differ).
    """

    def formula(args: tuple, kwargs: dict, out: Any) -> float:
        q, k, v = args[:3]
        is_causal = kwargs.get("is_causal", args[causal_at] if len(args) > causal_at else False)
        bh, n_q, n_k, d, d_v = _attention_shapes(q, k, v)
        pairs = causal_pairs(n_q, n_k) if is_causal else n_q * n_k
        return bh * pairs * (2.0 * d + SOFTMAX_FLOPS + 2.0 * d_v)

    return formula


def _attention_backward(causal_at: int) -> Formula:
    """Backward: recompute-free; dV = PᵀdO, dP = dO Vᵀ, dS = softmax'(dP), dQ = dS K, dK = dSᵀQ."""

    def formula(args: tuple, kwargs: dict, out: Any) -> float:
        grad_out, q, k, v = args[:4]
        is_causal = kwargs.get("is_causal", args[causal_at] if len(args) > causal_at else False)
        bh, n_q, n_k, d, d_v = _attention_shapes(q, k, v)
        pairs = causal_pairs(n_q, n_k) if is_causal else n_q * n_k
        return bh * pairs * (2.0 * d_v + 2.0 * d_v + SOFTMAX_BACKWARD_FLOPS + 2.0 * d + 2.0 * d)

    return formula


def _fft(kind: str) -> Formula:
    """5·n·log2(n) real FLOPs per complex transform of length n; 2.5·n·log2(n) with real input or output."""
    factor = 5.0 if kind == "c2c" else 2.5

    def formula(args: tuple, kwargs: dict, out: Any) -> float:
        dims = args[1]
        full = _first(out) if kind == "c2r" else args[0]  # the side that has the full length n
        n = math.prod(full.shape[d] for d in dims)
        transforms = full.numel() // n
        return factor * transforms * n * math.log2(max(n, 2))

    return formula


def _layer_norm(args: tuple, kwargs: dict, out: Any) -> float:
    # mean (1), subtract (1), square+sum for variance (2), normalise (1), scale (1), shift (1) per element.
    x, weight, bias = args[0], args[2] if len(args) > 2 else None, args[3] if len(args) > 3 else None
    return x.numel() * (5 + (weight is not None) + (bias is not None))


def _layer_norm_backward(args: tuple, kwargs: dict, out: Any) -> float:
    # dx: ~8 per element; dweight: multiply + sum (2); dbias: sum (1).
    grad_out = args[0]
    mask = args[-1]
    n = grad_out.numel()
    return n * (8 * mask[0] + 2 * mask[1] + 1 * mask[2])


def _rms_norm(args: tuple, kwargs: dict, out: Any) -> float:
    # square (1), mean (1), normalise (1), scale (1) per element.
    x = args[0]
    weight = args[2] if len(args) > 2 else None
    return x.numel() * (3 + (weight is not None))


def _rms_norm_backward(args: tuple, kwargs: dict, out: Any) -> float:
    # dx: ~6 per element; dweight: multiply + sum (2).
    grad_out = args[0]
    mask = args[-1] if isinstance(args[-1], (list, tuple)) else (True, True)
    return grad_out.numel() * (6 * mask[0] + 2 * mask[1])


def _sort(args: tuple, kwargs: dict, out: Any) -> float:
    x = args[0]
    dim = args[1] if len(args) > 1 and isinstance(args[1], int) else kwargs.get("dim", -1)
    n = x.shape[dim] if x.dim() else 1
    return x.numel() * math.log2(max(n, 2))


def _scatter_like(args: tuple, kwargs: dict, out: Any) -> float:
    # scatter_add / index_add: one add per source element.
    src = args[-1] if isinstance(args[-1], torch.Tensor) else args[3]
    return float(src.numel())


def _index_put(args: tuple, kwargs: dict, out: Any) -> float:
    accumulate = args[3] if len(args) > 3 else kwargs.get("accumulate", False)
    return float(args[2].numel()) if accumulate else 0.0


def _index_add(args: tuple, kwargs: dict, out: Any) -> float:
    return float(args[3].numel())


def _grouped_mm(args: tuple, kwargs: dict, out: Any) -> float:
    """Grouped matmul (a MoE's experts, transformers' grouped_mm): each row meets its own group's weight, so the
    count is 2·rows·K·N whatever the split into groups (no data needed): 2D×3D (M,K)·(G,K,N) -> (M,N),
    3D×3D batched -> (G,M,N), 2D×2D grouped along K -> (G,M,N)."""
    a, b = args[0], args[1]
    o = _first(out)
    if a.dim() == 2 and b.dim() == 2:
        return 2.0 * a.shape[0] * a.shape[1] * b.shape[1]
    return 2.0 * o.numel() * a.shape[-1]


def _embedding_backward(args: tuple, kwargs: dict, out: Any) -> float:
    return float(args[0].numel())  # accumulate each grad row into its token's row


ELEMENTWISE = """
add sub rsub mul div neg exp exp2 expm1 log log2 log1p sigmoid silu elu relu gelu tanh softplus
sqrt rsqrt pow reciprocal abs clamp clamp_min clamp_max maximum minimum square sin cos sign
eq ne lt le gt ge logical_not logical_and logical_or bitwise_and bitwise_or bitwise_not
floor ceil round trunc remainder fmod floor_divide erf erfinv atan2 hardtanh leaky_relu relu6 mish
sigmoid_backward silu_backward elu_backward tanh_backward threshold_backward softplus_backward
gelu_backward hardtanh_backward leaky_relu_backward mish_backward xlogy sgn real imag angle
""".split()

FUSED_ELEMENTWISE = {"addcmul": 2, "addcdiv": 2, "lerp": 2, "polar": 3, "logit": 2}

REDUCTIONS = {
    "sum": 1, "mean": 1, "amax": 1, "amin": 1, "max": 1, "min": 1, "prod": 1, "argmax": 1, "argmin": 1,
    "aminmax": 2, "nansum": 1, "nanmean": 1, "count_nonzero": 1, "median": 1, "nanmedian": 1, "kthvalue": 1, "mode": 1,
    "cumsum": 1, "cumprod": 1, "cummax": 1, "logcumsumexp": 3, "norm": 2, "linalg_vector_norm": 2,
    "var": 3, "std": 3, "var_mean": 3, "std_mean": 3, "logsumexp": 3, "any": 1, "all": 1, "topk": 1,
    "_softmax": SOFTMAX_FLOPS, "_log_softmax": SOFTMAX_FLOPS, "_safe_softmax": SOFTMAX_FLOPS,
    "_softmax_backward_data": SOFTMAX_BACKWARD_FLOPS, "_log_softmax_backward_data": 3,
    "nll_loss_forward": 1, "nll_loss_backward": 1, "mse_loss": 3, "mse_loss_backward": 3,
}

# Ops that move, create, select or reshape data: no arithmetic.
FREE = """
view _unsafe_view reshape as_strided t transpose permute expand unsqueeze squeeze slice select
split split_with_sizes chunk unbind narrow diagonal alias detach clone contiguous copy _to_copy
_copy_from _copy_from_and_resize to lift_fresh lift_fresh_copy empty empty_like empty_strided new_empty
new_empty_strided zeros zeros_like ones ones_like full full_like new_zeros new_ones new_full fill
zero arange linspace logspace eye tril triu cat stack flip roll repeat repeat_interleave index
index_select gather scatter masked_fill masked_scatter where embedding
randn rand randint randperm rand_like randn_like uniform normal bernoulli _unsafe_index _local_scalar_dense
view_as_real view_as_complex _conj _neg_view resolve_conj resolve_neg conj _reshape_alias
unfold pad constant_pad_nd _pad_enum slice_scatter select_scatter diagonal_scatter as_strided_scatter
set_ _has_compatible_shallow_copy_type nonzero masked_select one_hot scalar_tensor
_efficientzerotensor _to_dense tril_indices triu_indices squeeze_copy unsqueeze_copy expand_copy
permute_copy t_copy view_copy transpose_copy slice_copy split_copy select_copy
alias_copy detach_copy tensor item is_nonzero isnan isinf isfinite bincount
slice_backward select_backward index_select_backward
histc _unique2 unique_consecutive searchsorted bucketize complex argsort diag_embed
""".split()

FORMULAS: dict[OpOverloadPacket, Formula] = {}  # op -> its formula; torch.ops.aten.mm, never the bare name "mm"
_PENDING: dict[str, Formula] = {}  # "namespace::name" of ops whose library may not be loaded yet


def register_flop_formula(*ops: OpOverloadPacket | str) -> Callable[[Formula], Formula]:
    """Decorator: count each of `ops` with the decorated formula(args, kwargs, out) -> FLOPs.

    An op is an OpOverloadPacket (torch.ops.aten.mm: all its overloads, mm.default and mm.out), or the
    qualified name "namespace::name" of an op whose library may not be loaded when effprof is (a custom op
    of transformers). Keys carry the namespace, as torch.utils.flop_counter's registry does, so a custom op
    named `mm` is never counted as aten's. An op's in-place form (aten.mul_) is counted by its own formula
    where it has one, else by the formula of the out-of-place op of the same namespace (aten.mul).
    """

    for op in ops:
        if isinstance(op, str) and "::" not in op:  # a bare name would match any namespace's op of that name
            raise ValueError(f"register_flop_formula: {op!r} is not a qualified op name 'namespace::name'")
        if not isinstance(op, (str, OpOverloadPacket)):
            raise TypeError(f"register_flop_formula: {op!r} is not an op (torch.ops.namespace.name) or 'namespace::name'")

    def register(formula: Formula) -> Formula:
        for op in ops:
            if isinstance(op, str):
                _PENDING[op] = formula
            else:
                FORMULAS[op] = formula
        return formula

    return register


def _registers(ops: dict[OpOverloadPacket | str, Formula]) -> None:
    for op, formula in ops.items():
        register_flop_formula(op)(formula)


def _aten(names) -> list[OpOverloadPacket]:
    """The aten ops of these names that this torch has (pyproject allows torch 2.5 on: a newer op is absent there,
    and no call of it can reach the counter)."""
    return [getattr(aten, name) for name in names if hasattr(aten, name)]


# The generic rules first, the explicit formulas after them (so an explicit one, e.g. mul's complex product, wins).
_registers({op: per_output(1) for op in _aten(ELEMENTWISE)})
_registers({op: per_output(FUSED_ELEMENTWISE[op.__name__]) for op in _aten(FUSED_ELEMENTWISE)})
_registers({op: per_input(REDUCTIONS[op.__name__]) for op in _aten(REDUCTIONS)})
_registers({
    aten.mm: _mm,
    aten.bmm: _bmm,
    aten.addmm: _addmm,
    aten.baddbmm: _baddbmm,
    aten.convolution: _convolution,
    aten.convolution_backward: _convolution_backward,
    # the fused attention kernels, CPU and CUDA, counted alike (with causal masking); the number is the
    # position of is_causal in each kernel's schema
    aten._scaled_dot_product_flash_attention_for_cpu: _attention(4),
    aten._scaled_dot_product_flash_attention_for_cpu_backward: _attention_backward(7),
    aten._scaled_dot_product_flash_attention: _attention(4),
    aten._scaled_dot_product_flash_attention_backward: _attention_backward(11),
    aten._scaled_dot_product_efficient_attention: _attention(6),
    aten._scaled_dot_product_efficient_attention_backward: _attention_backward(11),
    aten._scaled_dot_product_cudnn_attention: _attention(6),
    aten._scaled_dot_product_cudnn_attention_backward: _attention_backward(14),
    aten._fft_r2c: _fft("r2c"),
    aten._fft_c2r: _fft("c2r"),
    aten._fft_c2c: _fft("c2c"),
    aten.native_layer_norm: _layer_norm,
    aten.native_layer_norm_backward: _layer_norm_backward,
    "aten::_fused_rms_norm": _rms_norm,  # by name: ops of newer torch versions than the oldest pyproject allows
    "aten::_fused_rms_norm_backward": _rms_norm_backward,
    aten.sort: _sort,
    aten.scatter_add: _scatter_like,
    aten.scatter_reduce: _scatter_like,
    aten.index_add: _index_add,
    aten.embedding_dense_backward: _embedding_backward,
    aten.unfold_backward: per_input(1),  # overlapping windows' gradients summed: one add per window element
    aten.index_put: _index_put,  # accumulate=True adds each value: one add per value; otherwise a plain write
    aten._index_put_impl: _index_put,
    "aten::_grouped_mm": _grouped_mm,
    "aten::grouped_mm": _grouped_mm,  # the public grouped_mm of newer torch versions
    "transformers::grouped_mm_fallback": _grouped_mm,  # transformers' custom op where torch's grouped_mm does not apply
    aten.mul: _complex_mul,
})

FREE_OPS = frozenset(_aten(FREE))
# Free ops that move no data: views the schema does not mark as views (_unsafe_view: a matmul's result
# reshaped), ops that only allocate, alias or read one scalar. Their calls still count.
NO_TRAFFIC = frozenset(_aten("""
_unsafe_view _reshape_alias view_as_real view_as_complex _conj _neg_view alias detach lift_fresh
empty empty_like empty_strided new_empty new_empty_strided _local_scalar_dense set_ _has_compatible_shallow_copy_type item
is_nonzero
""".split()))
# Queries of a tensor's metadata that a tensor subclass (the FakeTensors of a count-only measurement) sends
# through the dispatcher and a real tensor answers without it: not ops, so neither counted nor listed.
METADATA_QUERIES = frozenset({torch.ops.prim.device.default, torch.ops.prim.layout.default})


class _Op(NamedTuple):
    """What FlopCounter needs to know about an op, looked up once per counter."""

    name: str  # the key in by_op and ops: the bare name for aten ("mm", in-place "mul_" as "mul"), else "namespace::name"
    formula: Formula | None  # None: free, or unknown
    free: bool
    moves_data: bool  # whether its operands' and results' bytes are traffic (not for views and NO_TRAFFIC)
    custom: bool  # outside aten and prim: a compiled kernel or a library's custom op


def classify(func: OpOverload) -> _Op:
    """Look op `func` up by op, namespace included: its own formula or free mark, else (an in-place op such as
    aten.mul_) those of the out-of-place op of the same namespace (aten.mul), else a formula its author
    registered with torch.utils.flop_counter. An op with none of these is unknown."""
    packet = func.overloadpacket
    candidates = [packet]
    namespace = getattr(torch.ops, func.namespace)
    if packet.__name__.endswith("_") and hasattr(namespace, packet.__name__[:-1]):
        candidates.append(getattr(namespace, packet.__name__[:-1]))
    chosen, formula = packet, None
    for candidate in candidates:
        formula = FORMULAS.get(candidate) or _PENDING.get(candidate._qualified_op_name) or _registered(candidate)
        if formula is not None or candidate in FREE_OPS:
            chosen = candidate
            break
    free = formula is None and chosen in FREE_OPS
    key = chosen.__name__ if func.namespace == "aten" else chosen._qualified_op_name
    moves_data = formula is not None or not (func.is_view or chosen in NO_TRAFFIC)
    return _Op(key, formula, free, moves_data, func.namespace not in ("aten", "prim"))


class FlopCounter(TorchDispatchMode):
    """Count FLOPs of everything run inside `with FlopCounter() as c:`.

    c.total: FLOPs; c.by_op: FLOPs per op (aten ops by bare name, others as namespace::name); c.unknown_ops:
    ops with no formula that are not known to be free (their FLOPs are missing from total);
    c.custom_ops: calls of ops outside aten (compiled kernels such as
    effprof::chunked_selective_scan), so a record says which kernels ran;
    c.bytes_moved: operand and result bytes of the counted ops, the traffic of an
    implementation with no reuse across ops (the roofline's arithmetic intensity is
    total / bytes_moved).
    c.ops: every op dispatched, counted or free, as {name: [FLOPs, bytes, calls]}: the
    per-op counts the roofline bound is computed from (effprof.hardware.model). A free op
    that moves data (a copy, a cat, a gather) has its operand and result bytes there; a
    view, and an op that only allocates (NO_TRAFFIC), has 0 bytes but its call.
    """

    def __init__(self) -> None:
        super().__init__()
        self.by_op: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()
        self.unknown_ops: Counter[str] = Counter()
        self.custom_ops: Counter[str] = Counter()
        self.bytes_moved = 0
        self.ops: dict[str, list[float]] = {}
        self._known: dict[OpOverload, _Op] = {}  # classify's answers, per counter (a formula may be registered later)

    @property
    def total(self) -> float:
        return float(sum(self.by_op.values()))

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if func in METADATA_QUERIES:
            return out
        op = self._known.get(func)
        if op is None:
            op = self._known[func] = classify(func)
        name = op.name
        if op.custom:
            self.custom_ops[name] += 1
        flops = traffic = 0.0
        if op.formula is not None:
            flops = op.formula(args, kwargs, out)
            self.by_op[name] += flops
            self.calls[name] += 1
        elif not op.free:
            self.unknown_ops[name] += 1
        if op.moves_data:
            # ideal memory traffic of the op: every operand read once, every result written once
            traffic = _tensor_bytes(args) + _tensor_bytes(kwargs.values()) + _tensor_bytes(out)
            if op.formula is not None:
                self.bytes_moved += traffic
        entry = self.ops.get(name)
        if entry is None:
            entry = self.ops[name] = [0.0, 0.0, 0]
        entry[0] += flops
        entry[1] += traffic
        entry[2] += 1
        return out


def _tensor_bytes(x: Any) -> int:
    if isinstance(x, torch.Tensor):
        return x.numel() * x.element_size()
    if isinstance(x, (tuple, list)) or type(x).__name__ == "dict_values":
        return sum(_tensor_bytes(t) for t in x)
    return 0


def count_flops(fn: Callable[[], Any]) -> FlopCounter:
    """Run fn() once under a FlopCounter and return the counter."""
    with FlopCounter() as counter:
        fn()
    return counter
