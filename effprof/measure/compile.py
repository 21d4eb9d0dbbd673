"""Compiled variants (config key `compile`): a point measured as users run a torch.compile'd model.

    compile=none                        eager (the default; such records carry no compile figures)
    compile=default                     torch.compile with inductor (C++ on CPU, Triton on CUDA)
    compile=reduce-overhead             inductor plus CUDA graphs (on CPU: as default)
    compile=max-autotune                inductor searching kernel configurations (and CUDA graphs)
    compile=max-autotune-no-cudagraphs  the search without CUDA graphs

What is compiled is what the workload (measure/workload.py) calls in the point's mode, as a user would
compile it: the module's call (forward and train; nn.Module.compile), `training_loss` where the model has
its own objective, `step` in decode, `generate` for a model with its own sampler. Each is compiled with
dynamic=False: every point has its own fixed shapes.

The harness counts FLOPs (and fvcore's count) on the eager module *before* compiling, so the counts are
exact and equal the eager record's. Then `compile_in_place` swaps in the compiled entry points and
`cold_call` runs the workload once, which compiles it:

    compile_time_s   seconds of that first call: compilation plus one run (the cold start)
    graph_breaks     how many times dynamo broke the graph (torch._dynamo's graph_break counter)
    graph_break_reasons  the distinct reasons, '; '-separated (at most BREAK_REASONS of them)
    compile_error    why compiling failed (the record's status is then `error`, its message says so too)

Peak memory and wall time (`time_s`, the warm figure) are then measured on the compiled workload as for
any point. Nothing here is imported unless a point asks for compile.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from effprof.mechanisms.base import provides

BREAK_REASONS = 8  # distinct graph-break reasons kept in a record
REASON_CHARS = 160  # each reason's length in a record


class CompileFailed(RuntimeError):
    """torch.compile could not compile (or run) the workload: the message says why, in one line."""


def is_compiled(config: dict[str, Any]) -> bool:
    return config.get("compile") not in (None, "none")


def compile_in_place(module: torch.nn.Module, mode: str, compile_mode: str) -> list[str]:
    """Replace the entry points the workload of `mode` calls by their compiled forms; returns their names."""
    options: dict[str, Any] = {"mode": compile_mode, "dynamic": False}
    names: list[str] = []
    if mode == "train" and provides(module, "training_loss"):
        module.training_loss = torch.compile(module.training_loss, **options)
        names.append("training_loss")
    elif mode == "decode" and provides(module, "generate"):
        module.generate = torch.compile(module.generate, **options)
        names.append("generate")
    elif mode == "decode":
        module.step = torch.compile(module.step, **options)
        names.append("step")
    else:
        module.compile(**options)  # the module's call, hooks included, as model.compile() does
        names.append("forward")
    return names


def cold_call(run, device: str) -> dict[str, Any]:
    """Run the compiled workload once (this compiles it): compile_time_s, graph_breaks, graph_break_reasons.

    Raises CompileFailed with dynamo's or inductor's reason when compiling fails.
    """
    from torch._dynamo.utils import counters

    counters["graph_break"].clear()
    start = time.perf_counter()
    try:
        run()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
    except Exception as e:  # dynamo's Unsupported, inductor's errors, a C++ compiler that is missing or fails
        if type(e).__module__.startswith("torch._dynamo") or type(e).__module__.startswith("torch._inductor"):
            raise CompileFailed(_reason(e)) from None
        raise
    elapsed = time.perf_counter() - start
    breaks = counters["graph_break"]
    reasons = sorted(breaks, key=lambda r: -breaks[r])[:BREAK_REASONS]
    return {"compile_time_s": elapsed, "graph_breaks": int(sum(breaks.values())),
            "graph_break_reasons": "; ".join(_short(r) for r in reasons)}


def _reason(error: BaseException) -> str:
    """One line: the error's type and its message, without torch's advice on logging (which follows the cause)."""
    text = " ".join(str(error).split())
    for advice in ("Set TORCH", "You can suppress", "For even more developer context"):
        text = text.split(advice)[0].strip()
    return f"{type(error).__name__}: {text}"[:300]


def _short(reason: str) -> str:
    text = " ".join(str(reason).split())
    return text if len(text) <= REASON_CHARS else text[:REASON_CHARS - 3] + "..."
