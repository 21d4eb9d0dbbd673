"""The folders are the pipeline, and no import runs up it (ARCHITECTURE.md § Code map).

Every import of an effprof module by another — at the top of a file or inside a function, where a cycle used to
hide — goes from a stage to the same stage or one below it. The stages, bottom to top, are STAGES; a module's
stage is the longest prefix of its dotted name listed there.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "effprof"

# bottom to top: a module may import its own stage and the ones before it, never one after
STAGES: list[tuple[str, tuple[str, ...]]] = [
    ("base", ("effprof.config", "effprof.suggest", "effprof.version")),
    ("store", ("effprof.store",)),
    ("runtime", ("effprof.runtime",)),
    ("mechanisms", ("effprof.cost_model", "effprof.kernels", "effprof.mechanisms", "effprof.registry")),
    ("targets", ("effprof.plugins", "effprof.modules")),
    ("measure", ("effprof.measure", "effprof.hardware")),
    ("executors", ("effprof.executors", "effprof.runner")),
    ("analyse", ("effprof.analyse",)),
    ("render", ("effprof.render",)),
    ("gates", ("effprof.contract", "effprof.check", "effprof.pytest_plugin")),
    ("course", ("effprof.course",)),
    ("cli", ("effprof.cli", "effprof.__main__", "effprof")),
]
RANK = {prefix: rank for rank, (_, prefixes) in enumerate(STAGES) for prefix in prefixes}


def stage(module: str) -> int:
    """The rank of the stage a dotted module name belongs to (its longest listed prefix)."""
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in RANK:
            return RANK[".".join(parts[:n])]
    raise KeyError(f"{module} is in no stage of tests/test_layering.py's STAGES: give it one (and ARCHITECTURE.md a line)")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[str, int]]:
    """Every effprof module `path` imports (`from effprof.x import y` names effprof.x.y where that is a module), with the line."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "effprof":
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                is_module = (PACKAGE.parent / Path(*sub.split("."))).with_suffix(".py").exists() or (PACKAGE.parent / Path(*sub.split("."))).is_dir()
                found.append((sub if is_module else node.module, node.lineno))
        elif isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names if alias.name.split(".")[0] == "effprof"]
    return found


def violations() -> list[str]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        importer = module_name(path)
        for imported, line in imports(path):
            if stage(imported) > stage(importer):
                out.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {importer} ({STAGES[stage(importer)][0]}) imports "
                           f"{imported} ({STAGES[stage(imported)][0]})")
    return out


def test_every_module_has_a_stage():
    for path in PACKAGE.rglob("*.py"):
        stage(module_name(path))


def test_no_import_runs_up_the_pipeline():
    assert violations() == []


def test_the_check_catches_an_import_that_runs_up(tmp_path, monkeypatch):
    """The negative: a store module importing the analyse stage, even lazily inside a function, is reported."""
    planted = PACKAGE / "store" / "_planted_for_test.py"
    planted.write_text("def f():\n    from effprof.analyse.session import analyse\n    return analyse\n", encoding="utf-8")
    try:
        found = violations()
    finally:
        planted.unlink()
    assert found == ["effprof/store/_planted_for_test.py:2: effprof.store._planted_for_test (store) imports "
                     "effprof.analyse.session (analyse)"]


def test_an_unplaced_module_is_refused():
    with pytest.raises(KeyError, match="no stage"):
        stage("effprof_other.thing")
