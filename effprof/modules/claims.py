"""`--claim` for module targets: `metric:axis=exponent[@mode]`, scoped to one target as `TARGET.metric:axis=...`."""

from __future__ import annotations

from effprof.config import KEYS, ConfigError
from effprof.registry import MODES, Claim
from effprof.suggest import did_you_mean


def split_claim(text: str) -> tuple[str | None, str]:
    """'mylayers:build_conv.flops:seq_len=1' -> ('mylayers:build_conv', 'flops:seq_len=1'); an unscoped claim -> (None, text).

    The scope is everything before the last '.' that precedes the claim's metric (targets hold colons and dots:
    hf:llama.attention.time:seq_len=2)."""
    head, _, _ = text.partition("=")
    before_axis = head.rpartition(":")[0]  # TARGET.metric, or metric
    target, dot, _ = before_axis.rpartition(".")
    if dot and target:
        return target, text[len(target) + 1:]
    return None, text


def parse_claim(text: str) -> Claim:
    """`metric:axis=exponent[@mode]` -> Claim, e.g. 'flops:seq_len=2' or 'time:seq_len=1@decode'.

    The mode defaults to forward. Raises ConfigError naming the bad part.
    """
    from effprof.plugins import claim_problem
    from effprof.store.metrics import CLAIMABLE as METRICS

    head, _, rest = text.partition(":")
    axis, _, value = rest.partition("=")
    exponent_text, _, mode = value.partition("@")
    mode = mode or "forward"
    example = "e.g. flops:seq_len=2 or time:seq_len=1@decode"
    if not head or not axis or not exponent_text:
        raise ConfigError(f"--claim {text!r} is not metric:axis=exponent[@mode]; {example}")
    if head not in METRICS:
        raise ConfigError(f"--claim {text!r}: metric {head!r} is not one of {', '.join(METRICS)}{did_you_mean(head, METRICS)}")
    if axis not in KEYS:
        raise ConfigError(f"--claim {text!r}: axis {axis!r} is not a config key{did_you_mean(axis, KEYS)}; e.g. seq_len, d_model, batch")
    try:
        exponent = float(exponent_text)
    except ValueError:
        raise ConfigError(f"--claim {text!r}: exponent {exponent_text!r} is not a number; {example}") from None
    if mode not in MODES:
        raise ConfigError(f"--claim {text!r}: mode {mode!r} is not one of {', '.join(MODES)}{did_you_mean(mode, MODES)}")
    claim = Claim(head, axis, exponent, mode)
    if problem := claim_problem(claim):  # the one rule a claim keeps (a plugin's claims too): numeric axis, exponent's range
        raise ConfigError(f"--claim {text!r} {problem}")
    return claim
