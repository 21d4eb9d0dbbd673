"""What a week's lab is: the points it measures and what it tells the student to look at.

A lab is data (one small module per week in effprof/course/weeks/):

    Lab(week=7, title="Linear attention", concept="...",
        sweeps=(Sweep(("softmax_attention", "linear_attention"), {"seq_len": [128, ..., 2048]}, ("forward", "decode")),),
        looks=(look_crossover, look_state, ...))

Each Sweep is one `effprof.runner.plan` call (names × vary × modes at a config); the lab measures all
of them with `effprof.runner.run_points`, analyses them once (`effprof.analyse.session.analyse`) and asks each
look for its finding. A look reads the Session (and the lab's extra measurements, e.g. forms agreeing)
and returns a Finding: what to look at, and the measured number beside it. Looks never hold numbers of
their own: a figure that is not in the session is "not measured".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Sweep:
    """One planned grid: mechanisms × vary × modes at `config` (NAME.key scopes a key to one mechanism)."""

    names: tuple[str, ...]
    vary: dict[str, list[Any]]
    modes: tuple[str, ...] = ("forward",)
    config: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Finding:
    """What to look at (a sentence), the measured figure beside it, and what it shows (a sentence)."""

    look_at: str
    measured: str
    meaning: str = ""


# look(session, extras) -> Finding; extras holds the lab's own measurements (Lab.extras), by name.
Look = Callable[[Any, dict[str, Any]], Finding]


@dataclass(frozen=True)
class Lab:
    week: int
    title: str
    concept: str  # the week's key concept, one or two sentences in the roadmap's words
    sweeps: tuple[Sweep, ...]
    looks: tuple[Look, ...]
    timing: bool = True  # time the points (off where only counted quantities matter: faster, exact)
    max_time_s: float = 0.15  # timing budget per point
    patterns: bool = False  # measure the attention patterns of the sparse mechanisms (drawn on the page)
    # extra measurements that are not records (forms agreeing, an attention matrix): name -> function() -> data
    extras: dict[str, Callable[[], Any]] = field(default_factory=dict)
    project: str | None = None  # the week-16 project checked with --check (effprof/course/projects.py)

    @property
    def mechanisms(self) -> list[str]:
        return list(dict.fromkeys(name for sweep in self.sweeps for name in sweep.names))
