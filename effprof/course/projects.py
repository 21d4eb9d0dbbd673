"""The week-16 projects: which reference each is checked against, at what config, and its template.

    effprof course 7 --template > my_linear.py      # fill in the TODOs
    effprof course 7 --check my_linear.py:build     # effprof.course.check, against linear_attention

Each template (effprof/course/templates/) states the weight-loading convention: build(config, weights) gets
the reference's resolved config and its state_dict() at that config.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from effprof.config import ConfigError


@dataclass(frozen=True)
class Project:
    name: str
    week: int
    title: str
    reference: str  # the registered mechanism the student's form is checked against
    template: str  # file in effprof/course/templates/
    config: dict[str, Any] = field(default_factory=dict)  # reference defaults the check uses (the form whose claims apply)
    scaling_config: dict[str, Any] = field(default_factory=dict)  # sizes of the scaling measurement (besides seq_len)
    scaling_axes: dict[str, tuple[Any, ...]] = field(default_factory=dict)  # axes measured besides seq_len, with their values

    def template_text(self) -> str:
        return resources.files("effprof.course.templates").joinpath(self.template).read_text(encoding="utf-8")


PROJECTS = {p.name: p for p in (
    Project("linear_attention", 7, "Linear attention from scratch", "linear_attention", "linear_attention.py",
            {"impl": "recurrent", "feature_map": "elu1"}, {"d_model": 32, "n_heads": 2}),
    Project("mamba", 8, "A Mamba-style selective SSM", "mamba", "mamba.py", {"impl": "sequential"}, {"d_model": 16, "d_state": 4}),
    Project("sliding_window", 9, "A sparse pattern: causal sliding-window attention", "sliding_window", "sliding_window.py",
            {"impl": "fused", "dilation": 1}, {"d_model": 32, "n_heads": 2, "window": 16}),
    Project("moe_topk", 10, "An MoE router: token-choice top-k", "moe_topk", "moe_router.py",
            {"impl": "sorted", "capacity_factor": 0.0, "n_shared_experts": 0}, {"d_model": 16, "d_ff": 16, "seq_len": 64},
            {"top_k": (1, 2, 4, 8)}),
    Project("hybrid", 11, "A hybrid: Mamba, MoE, attention and FFN in one residual stack", "hybrid", "hybrid.py",
            {"pattern": "MEAF"}, {"d_model": 16, "d_ff": 16, "d_state": 4}),
)}


def project_of_week(week: int) -> Project:
    for project in PROJECTS.values():
        if project.week == week:
            return project
    weeks = ", ".join(str(p.week) for p in PROJECTS.values())
    raise ConfigError(f"week {week} has no week-16 project to --check or --template; accepted weeks: {weeks}")
