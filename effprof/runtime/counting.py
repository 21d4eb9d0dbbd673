"""Count-only measurement: the same module and counters on tensors with shapes but no data.

    with counting() as assumptions:
        module = build(name, **config)          # parameters are FakeTensors: nothing of full size is allocated
        work = make_workload(module, config, mode)
        with FlopCounter() as c, LiveTensorTracker() as t:
            work.run()                          # c.total, c.bytes_moved, t.peak: exact, from shapes alone

Inside `counting()` every tensor made (weights, inputs, every intermediate) is a
torch FakeTensor (torch._subclasses.fake_tensor): it carries shape, dtype, device
and a storage size but no data, and each op computes only its output's metadata.
The dispatcher counters of measure/flops.py and measure/memory.py sit above the fake
mode, so they see the same aten ops as a real run: FLOPs, bytes moved, params,
state/KV bytes, activation bytes and peak bytes follow exactly from shapes (peak and
activation bytes from the storages the tracker sees created and freed). Nothing is
timed: time_s stays empty and the record carries `measured_by: "count"`.

Data-dependent shapes. An op whose output size depends on values (nonzero, bincount,
.tolist() of a result) has no fake form. A mechanism whose work depends on its data
asks this module for a nominal size instead (`expert_loads`, ...), and every such
substitute is written to the record's `assumptions` field, so a count never rests
on a silent guess. An op that still needs data ends the point with status
`unsupported` and the op named, never a crash and never a silent zero.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator

import torch
from torch._subclasses.fake_tensor import DataDependentOutputException, DynamicOutputShapeException, FakeTensor, FakeTensorMode

# Exceptions that mean "this op needs the data": the point is `unsupported` under count-only.
NEEDS_DATA = (DataDependentOutputException, DynamicOutputShapeException)

_assumptions: list[str] | None = None  # the assumptions of the count in progress; None: not counting


@contextlib.contextmanager
def counting() -> Iterator[list[str]]:
    """Make every tensor created inside fake; yields the list of assumptions taken while counting."""
    global _assumptions
    outer, _assumptions = _assumptions, []
    try:
        # allow_non_fake_inputs: constants cached by a real run (a sparse layout's index table) join in as fakes
        with FakeTensorMode(allow_non_fake_inputs=True):
            yield _assumptions
    finally:
        _assumptions = outer


def active() -> bool:
    """Whether a count-only measurement is in progress (tensors carry no data)."""
    return _assumptions is not None


def assume(text: str) -> None:
    """Record an assumption the count rests on (once per point)."""
    if _assumptions is not None and text not in _assumptions:
        _assumptions.append(text)


def is_fake(t: torch.Tensor) -> bool:
    return isinstance(t, FakeTensor)


def expert_loads(expert: torch.Tensor, n_experts: int) -> list[int]:
    """Assignments routed to each expert: bincount of `expert` (one expert index per assignment, (A,)).

    Counting, the indices carry no data: the load is taken balanced (A/E per expert, the remainder
    spread over the first experts), the load a load-balancing loss drives routing towards, and the
    assumption is recorded. With no capacity limit the experts' FLOPs do not depend on the split.
    """
    if not active():
        return torch.bincount(expert, minlength=n_experts).tolist()
    total = expert.numel()
    assume(f"token-choice dispatch: balanced expert load ({total} assignments over {n_experts} experts)")
    base, extra = divmod(total, n_experts)
    return [base + (i < extra) for i in range(n_experts)]


def assignments_of(expert: torch.Tensor, i: int, n_experts: int) -> torch.Tensor:
    """Positions of the assignments routed to expert i, in routing order: (C_i,).

    Counting: the i-th contiguous block of the balanced split of `expert_loads` (same sizes, no data).
    """
    mine = expert == i  # the comparison the dispatch makes, counted alike in both forms: (A,)
    if not active():
        return mine.nonzero()[:, 0]
    loads = expert_loads(expert, n_experts)
    start = sum(loads[:i])
    return torch.arange(start, start + loads[i], device=expert.device)


@contextlib.contextmanager
def with_data() -> Iterator[None]:
    """Compute a small constant whose values matter (an initialisation such as HiPPO's eigenbasis) on real
    tensors, also while counting; what it returns joins the count as fakes when used."""
    from torch._subclasses.fake_tensor import unset_fake_temporarily

    with unset_fake_temporarily():
        yield


def to_device(module: torch.nn.Module, device: str, dtype: torch.dtype) -> torch.nn.Module:
    """module.to(device, dtype) while counting: every parameter and buffer made fake.

    A module built while counting already holds fakes; they are replaced in their modules, not swapped as
    nn.Module.to does (torch.utils.swap_tensors fails on a tensor anything holds a weak reference to, as the
    fake mode's memo can). A module holding real tensors (an instance given to effprof.profile) is never
    changed: a copy of it is made whose parameters are fakes (no data is copied). A tensor shared by two
    modules (tied weights) stays shared. Module.to's rule is kept: only floating-point and complex tensors
    change dtype.
    """
    mode = torch._guards.detect_fake_mode() or FakeTensorMode(allow_non_fake_inputs=True)
    tensors = [*module.parameters(), *module.buffers()]
    converted: dict[int, torch.Tensor] = {}
    for t in tensors:
        if id(t) not in converted:
            fake = t if is_fake(t) else mode.from_tensor(t)
            new = fake.to(device=device, dtype=dtype if t.is_floating_point() or t.is_complex() else None, copy=True)
            converted[id(t)] = torch.nn.Parameter(new, requires_grad=t.requires_grad) if isinstance(t, torch.nn.Parameter) else new
    if not all(is_fake(t) for t in tensors):
        return copy.deepcopy(module, memo=dict(converted))  # the parameters found in the memo are not copied
    for sub in module.modules():
        for table in (sub._parameters, sub._buffers):
            for key, t in table.items():
                if t is not None:
                    table[key] = converted[id(t)]
    return module
