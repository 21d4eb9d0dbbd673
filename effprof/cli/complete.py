"""Shell completion (`effprof --install-completion`): mechanism names, hf: targets, config keys, modes, metrics.

Each function takes what the user has typed of a value and returns the values that start with it; typer calls
them when the shell asks. They read the registry and the tables, never run anything a user did not name.
"""

from __future__ import annotations


def _starting(values, incomplete: str) -> list[str]:
    return [v for v in values if v.startswith(incomplete or "")]


def _hf_targets() -> list[str]:
    from effprof.modules.hf import LAYERS

    return ["hf:" + name for name in LAYERS]


def mechanisms(incomplete: str) -> list[str]:
    """Registered mechanism names (plugins loaded by [tool.effprof] too), then the hf: layers."""
    from effprof.registry import list_mechanisms

    return _starting([*list_mechanisms(), *_hf_targets()], incomplete)


def modules(incomplete: str) -> list[str]:
    """--module: the hf: layers (a pkg.mod:factory is the user's own: nothing to list)."""
    return _starting(_hf_targets(), incomplete)


def keys(incomplete: str) -> list[str]:
    """--param / --vary: `key=` for every config key; after the `=`, nothing (the values are the user's)."""
    from effprof.config import KEYS

    if "=" in (incomplete or ""):
        return []
    return _starting([f"{key}=" for key in KEYS], incomplete)


def modes(incomplete: str) -> list[str]:
    from effprof.registry import MODES

    return _starting(MODES, incomplete)


def claims(incomplete: str) -> list[str]:
    """--claim: `metric:` for each metric, then `metric:axis=` for each numeric axis."""
    from effprof.analyse.fit import NUMERIC_AXES
    from effprof.store.metrics import CLAIMABLE

    metric, colon, rest = (incomplete or "").partition(":")
    if not colon:
        return _starting([f"{m}:" for m in CLAIMABLE], incomplete)
    if "=" in rest:
        return []
    return _starting([f"{metric}:{axis}=" for axis in NUMERIC_AXES], incomplete)
