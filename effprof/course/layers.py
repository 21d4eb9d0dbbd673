"""Ready-made layers for the hybrid project: effprof's own, loaded with the weights the checker hands out."""

from __future__ import annotations

from typing import Any


def reference_layers(config: dict[str, Any], weights: dict[str, Any]) -> list[Any]:
    """The mixers f_1 … f_L of effprof's hybrid at `config`, with `weights` (its state_dict()) loaded."""
    from effprof.registry import build

    stack = build("hybrid", **{k: v for k, v in config.items()})
    stack.load_state_dict(weights)
    return [block.mixer for block in stack.blocks]
