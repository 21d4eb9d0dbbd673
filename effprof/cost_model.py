"""Arithmetic of the analytic cost models, in the FLOP convention (ARCHITECTURE.md § FLOP convention).

A multiply-add is 2 FLOPs, an elementwise op 1 FLOP per output element, a
reduction 1 FLOP per input element. `Tally` adds up the forward and backward
FLOPs of the ops a mechanism runs, so a cost model reads like the forward pass:

    t = Tally()
    t.linear(tokens, d_model, 3 * d_model)      # Q, K, V projections
    t.softmax(batch * n_heads * n * n)
    return t.total(mode)

The backward counts are what autograd runs for each op (e.g. a linear layer's
backward is two matmuls: grad of input and grad of weight).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SOFTMAX_FLOPS = 5  # max, subtract, exp, sum, divide per element
SOFTMAX_BACKWARD_FLOPS = 4  # g*y, sum, subtract, multiply by y per element
BYTES = {"float32": 4, "float16": 2, "bfloat16": 2}


@dataclass
class Tally:
    forward: float = 0.0
    backward: float = 0.0

    def add(self, forward: float, backward: float = 0.0) -> None:
        self.forward += forward
        self.backward += backward

    def linear(self, tokens: float, d_in: int, d_out: int, grad_input: bool = True, bias: bool = False) -> None:
        """y = x W (+ b): forward 2·t·d_in·d_out; backward dW (and dx) likewise, db a reduction."""
        mac = 2.0 * tokens * d_in * d_out
        self.add(mac + (tokens * d_out if bias else 0), mac * (2 if grad_input else 1) + (tokens * d_out if bias else 0))

    def matmul(self, batch: float, m: int, k: int, n: int, grads: int = 2) -> None:
        """(m×k)@(k×n), `batch` times; backward one matmul of the same size per input needing grad."""
        mac = 2.0 * batch * m * k * n
        self.add(mac, mac * grads)

    def elementwise(self, numel: float, forward: float = 1, backward: float = 1) -> None:
        self.add(forward * numel, backward * numel)

    def softmax(self, numel: float) -> None:
        self.add(SOFTMAX_FLOPS * numel, SOFTMAX_BACKWARD_FLOPS * numel)

    def total(self, mode: str) -> float:
        return self.forward + (self.backward if mode == "train" else 0.0)


def causal_pairs(n_q: int, n_k: int) -> int:
    """(query, key) pairs a causal kernel computes; the queries are the last n_q of n_k positions."""
    return n_q * (n_k - n_q) + n_q * (n_q + 1) // 2


def dtype_bytes(config: dict) -> int:
    return BYTES[config["dtype"]]


def mean_over_decode(config: dict, per_token) -> float:
    """Mean of per_token(context) over the gen_len decode steps after a prefill of seq_len.

    per_token(n) is the cost of the step that sees n tokens in total (itself included).
    """
    n0, steps = config["seq_len"], config["gen_len"]
    return sum(per_token(n0 + i + 1) for i in range(steps)) / steps


def estimated_bytes(spec: Any, config: dict[str, Any], mode: str) -> float:
    """A rough upper estimate of a point's memory, from its cost model, to refuse absurd sizes up front.

    The spec's own estimate (Cost.extra["peak_bytes"]) where it gives one; otherwise a dozen
    activations of (batch, seq_len, d_model) — three times that in train mode — plus the decode state.
    """
    cost = spec.cost(config, mode)
    activations = 12 * config["batch"] * (config["seq_len"] + config["gen_len"]) * config["d_model"] * BYTES[config["dtype"]]
    estimate = cost.extra.get("peak_bytes", activations)
    return (3 if mode == "train" else 1) * estimate + 2 * cost.state_bytes
