"""effprof validate PLUGIN: run effprof's contract tests on a plugin's mechanisms, one line per test."""

from __future__ import annotations

from typing import Annotated

import typer

from effprof.cli import app
from effprof.cli.options import JsonOpt
from effprof.cli.output import out, print_json
from effprof.render.escape import plain


@app.command("validate")
def validate_command(
    target: Annotated[str, typer.Argument(help="the plugin: module:attr or an effprof.mechanisms entry point")],
    json_: JsonOpt = False,
) -> None:
    """Check a plugin's mechanisms as effprof checks its own: shapes, causality, prefill + steps = forward,
    counted FLOPs against the cost model in every mode, decode cost per token. Exit 1 when any test fails."""
    from rich.text import Text

    from effprof.contract import contract_checks
    from effprof.plugins import load_plugin
    from effprof.registry import get_spec

    failed = 0
    report = []
    for name in load_plugin(target):
        results = contract_checks(get_spec(name))
        failed += sum(not r.passed for r in results)
        report.append({"mechanism": name, "checks": [{"name": r.name, "passed": r.passed, "detail": r.detail} for r in results]})
        if not json_:
            out.print(plain(f"{name}:"))
            for r in results:
                mark = Text("pass", style="green") if r.passed else Text("FAIL", style="bold red")
                out.print(Text.assemble("  ", mark, "  ", plain(r.name), plain(f" — {r.detail}" if r.detail else "")))
    if json_:
        print_json(report)
    elif failed:
        out.print(f"{failed} check(s) failed")
    if failed:
        raise typer.Exit(1)
