"""User code that reaches past itself (issue 21): factories and plugins that exit, hang, crash, change torch's
global state, build only with the user's values, or write records no command can read.

Factories for `--module tests.plugins.user_code:NAME`; plugins for `--plugin` / `effprof validate`.
"""

from __future__ import annotations

import ctypes
import dataclasses
import sys
import time

import torch
from torch import nn

from effprof.registry import Cost
from tests.plugins.short_conv import ShortConv, _spec, short_conv_cost


def exits(d_model: int) -> nn.Module:
    """Like a script's argparse --help: ends the process instead of returning."""
    sys.exit(0)


def grad_off(d_model: int) -> nn.Module:
    """Switches autograd off for the whole process (a leftover of inference code)."""
    torch.set_grad_enabled(False)
    return nn.Linear(d_model, d_model)


def one_thread(d_model: int) -> nn.Module:
    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float64)
    return nn.Linear(d_model, d_model).float()


def heads(d_model: int, n_heads: int = 3) -> nn.Module:
    """Builds only where n_heads divides d_model: at the defaults (d_model 128, n_heads 3) it does not."""
    if d_model % n_heads:
        raise ValueError(f"d_model={d_model} is not divisible by n_heads={n_heads}")
    return nn.Linear(d_model, d_model)


def hangs(d_model: int) -> nn.Module:
    time.sleep(3600)
    return nn.Linear(d_model, d_model)


def segfaults(d_model: int) -> nn.Module:
    ctypes.string_at(0)  # reads address 0: SIGSEGV
    return nn.Linear(d_model, d_model)


def linear(d_model: int) -> nn.Module:
    """No decode contract: forward and train only."""
    return nn.Linear(d_model, d_model)


def _flops_as_text(config: dict, mode: str) -> Cost:
    cost = short_conv_cost(config, mode)
    return Cost(str(cost.flops), cost.state_bytes)  # "1234.0": float() reads it, no record reader does


flops_as_text = dataclasses.replace(_spec("flops_as_text", lambda config: ShortConv(config["d_model"])), cost=_flops_as_text)
complexity_numbers = dataclasses.replace(_spec("complexity_numbers", lambda config: ShortConv(config["d_model"])),
                                         complexity={"prefill": 2, "decode": 1})  # the record wants texts: "O(n)"


def _exiting_builder(config: dict) -> nn.Module:
    sys.exit(0)


exit_builder = _spec("exit_builder", _exiting_builder)


def _grad_off_builder(config: dict) -> nn.Module:
    torch.set_grad_enabled(False)
    return ShortConv(config["d_model"])


grad_off_builder = _spec("grad_off_builder", _grad_off_builder)
