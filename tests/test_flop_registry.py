"""FLOP formulas are keyed by op, namespace included (measure/flops.py `FORMULAS`, `register_flop_formula`):
a custom op that shares a bare name with an aten op is never counted by aten's formula."""

from __future__ import annotations

import pytest
import torch

from effprof.measure.flops import FORMULAS, FlopCounter, register_flop_formula
from effprof.runtime import counting as count_only


@torch.library.custom_op("effproftest::mm", mutates_args=())
def custom_mm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """An op of another library that happens to be called `mm` (its product runs below the dispatcher's modes)."""
    return a @ b


@custom_mm.register_fake
def _(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return a.new_empty(a.shape[0], b.shape[1])


@torch.library.custom_op("effproftest::scale", mutates_args=())
def custom_scale(x: torch.Tensor) -> torch.Tensor:
    return x * 3


def count(fn) -> FlopCounter:
    with FlopCounter() as c:
        fn()
    return c


def test_a_custom_op_named_mm_is_not_counted_as_aten_mm():
    a, b = torch.randn(3, 5), torch.randn(5, 7)
    theirs = count(lambda: custom_mm(a, b))
    assert theirs.total == 0 and "mm" not in theirs.by_op  # not aten's 2mkn under aten's name
    assert dict(theirs.unknown_ops) == {"effproftest::mm": 1}  # reported as uncounted, never a silent zero
    assert dict(theirs.custom_ops) == {"effproftest::mm": 1}
    assert "effproftest::mm" in theirs.ops and "mm" not in theirs.ops
    ours = count(lambda: a @ b)  # aten.mm itself still is counted
    assert ours.by_op == {"mm": 2 * 3 * 5 * 7} and not ours.unknown_ops and not ours.custom_ops


def test_a_custom_op_named_mm_is_uncounted_while_counting_too():
    with count_only.counting():
        a, b = torch.randn(3, 5), torch.randn(5, 7)
        c = count(lambda: custom_mm(a, b))
    assert c.total == 0 and dict(c.unknown_ops) == {"effproftest::mm": 1}


def test_the_decorator_registers_a_formula_for_an_op():
    op = torch.ops.effproftest.scale
    x = torch.randn(4, 6)
    assert dict(count(lambda: custom_scale(x)).unknown_ops) == {"effproftest::scale": 1}
    try:
        @register_flop_formula(op)
        def _scale(args, kwargs, out) -> float:
            return float(out.numel())

        c = count(lambda: custom_scale(x))
        assert c.by_op == {"effproftest::scale": 24} and not c.unknown_ops
    finally:
        FORMULAS.pop(op, None)


def test_a_formula_for_an_op_not_yet_loaded_is_keyed_by_its_qualified_name():
    from effprof.measure import flops

    register_flop_formula("effproftest::late")(lambda args, kwargs, out: 2.0 * out.numel())
    try:
        @torch.library.custom_op("effproftest::late", mutates_args=())
        def late(x: torch.Tensor) -> torch.Tensor:  # its library loads after effprof
            return x + 1

        c = count(lambda: late(torch.randn(5)))
        assert c.by_op == {"effproftest::late": 10} and not c.unknown_ops
    finally:
        flops._PENDING.pop("effproftest::late", None)


@pytest.mark.parametrize("bad", ["mm", torch.ops.aten.mm.default, None])
def test_the_decorator_refuses_a_bare_name_or_an_overload(bad):
    """A bare name would match any namespace's op of that name; an overload (mm.default) is not the op."""
    with pytest.raises((ValueError, TypeError), match="register_flop_formula: .* is not a"):
        register_flop_formula(bad)


def test_in_place_ops_use_their_own_namespaces_out_of_place_formula():
    x = torch.randn(4, 6)
    c = count(lambda: x.clone().mul_(x).add_(x).exp_())
    assert c.by_op == {"mul": 24, "add": 24, "exp": 24} and not c.unknown_ops


def test_metadata_queries_of_fake_tensors_are_not_ops():
    """A FakeTensor answers the C++ side's `.device` (indexing asks it) through the dispatcher: that query is no op,
    moves nothing and is not listed. It was listed, as `device` with the tensor's bytes as traffic, so count-only's
    per-op bytes (the roofline's input) exceeded a real run's."""

    def work(x):
        return x[..., None, None] * 2

    y = torch.randn(4, 6)
    real = count(lambda: work(y))
    with count_only.counting():
        x = torch.randn(4, 6)
        counted = count(lambda: work(x))
    assert counted.ops == real.ops and set(real.ops) == {"unsqueeze", "mul"}
