"""The work one point measures, as a zero-argument callable per mode.

- forward: y = m(x) under torch.no_grad().
- train:   y = m(x); y.backward(g) with x requiring grad (a layer inside a model);
           parameter grads are reset to None before each call. A model with its own
           objective (module.training_loss(x) -> scalar, e.g. the masked-diffusion
           loss) backpropagates that instead, reseeded on each call.
- decode:  from the state after a prefill of seq_len tokens (made once, not
           measured), generate gen_len tokens with step(); figures are divided
           by gen_len. step() is functional, so every call replays the same steps.
           A generative model with its own sampler (spec.generates: diffusion LMs)
           instead runs module.generate(context, gen_len) -> dict, where context =
           module.prepare(x) is the prompt's prefill (its KV cache, its token ids),
           made once and not measured, like the prefill above; generate is reseeded
           on each call so every call does the same work.

Inputs are drawn with a fixed seed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from effprof.mechanisms.base import provides


@dataclass
class Workload:
    run: Callable[[], Any]
    per_call: int  # units the figures are divided by (gen_len in decode, else 1)
    state: Any = None  # the prefill state in decode mode
    inputs: tuple[torch.Tensor, ...] = ()
    info: dict[str, Any] | None = None  # what generate() reported (forward_passes, ...)


def make_workload(module: torch.nn.Module, config: dict[str, Any], mode: str, seed: int = 0) -> Workload:
    b, n, d = config["batch"], config["seq_len"], config["d_model"]
    dtype, device = getattr(torch, config["dtype"]), config["device"]
    generator = torch.Generator(device="cpu").manual_seed(seed)
    x = torch.randn(b, n, d, generator=generator).to(device=device, dtype=dtype)
    if mode == "forward":
        module.eval()

        def run_forward() -> Any:
            with torch.no_grad():
                return module(x)

        return Workload(run_forward, 1, inputs=(x,))
    if mode == "train":
        module.train()
        x = x.requires_grad_(True)
        grad = torch.randn(b, n, d, generator=generator).to(device=device, dtype=dtype)

        def run_train() -> None:
            module.zero_grad(set_to_none=True)
            x.grad = None
            if provides(module, "training_loss"):
                torch.manual_seed(seed)
                module.training_loss(x).backward()
            else:
                module(x).backward(grad)

        return Workload(run_train, 1, inputs=(x, grad))
    if mode == "decode" and provides(module, "generate"):
        module.eval()
        steps = config["gen_len"]
        with torch.no_grad():  # the prompt's prefill (KV cache, prompt ids) is made once and not measured
            context = module.prepare(x) if provides(module, "prepare") else x

        def run_generate() -> Any:
            torch.manual_seed(seed)
            with torch.no_grad():
                return module.generate(context, steps)

        first = run_generate()
        return Workload(run_generate, steps, state=first.get("state"), inputs=(x,), info=first)
    if mode == "decode":
        module.eval()
        steps = config["gen_len"]
        tokens = torch.randn(b, steps, d, generator=generator).to(device=device, dtype=dtype)
        with torch.no_grad():
            _, state = module.prefill(x)

        def run_decode() -> Any:
            with torch.no_grad():
                s = state
                for i in range(steps):
                    _, s = module.step(tokens[:, i : i + 1], s)
                return s

        return Workload(run_decode, steps, state=state, inputs=(x, tokens))
    raise ValueError(f"mode={mode!r}")
