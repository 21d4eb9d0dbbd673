"""fvcore's FLOP count, converted to effprof's convention, for comparison.

fvcore (FlopCountAnalysis) traces the module with torch.jit and counts one "flop"
per multiply-add for the ops it knows (matmul, linear, einsum, conv ...); it skips
elementwise ops, softmax and fused attention kernels. We multiply by 2 (a
multiply-add is 2 FLOPs here) and report it beside the counter. It is left empty,
with the reason, where it cannot apply: backward (train) and decode, or a Python
loop over many steps that the tracer would unroll.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import torch

from effprof.suggest import one_line

MAX_TRACED_STEPS = 256  # loop impls are traced only up to this seq_len


def fvcore_flops(spec, module: torch.nn.Module, config: dict[str, Any], mode: str, work) -> tuple[float | None, str]:
    if mode != "forward":
        return None, f"fvcore counts forward traces only, not {mode}"
    if config.get("impl") in spec.measure.loop_impls and config["seq_len"] > MAX_TRACED_STEPS:
        return None, f"impl={config['impl']} loops in Python; tracing {config['seq_len']} steps would take too long"
    try:
        from fvcore.nn import FlopCountAnalysis
    except ImportError:
        return None, "fvcore is not installed"
    logging.getLogger("fvcore").setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            analysis = FlopCountAnalysis(module, (work.inputs[0],))
            analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            return 2.0 * float(analysis.total()), ""
    except Exception as e:  # the tracer refuses many dynamic forms
        return None, f"fvcore could not trace: {type(e).__name__}: {one_line(e, 200)}"
