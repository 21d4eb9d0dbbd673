"""A mechanism's claims beside what a results file measured (effprof explain NAME --results FILE).

Each claim of the spec (metric ∝ axis^exponent in a mode, where the config has given values) is paired with
every fitted series of that mechanism (effprof.analyse.fit rows) that judges it: same metric, axis and mode (state and
parameter counts in any mode: they do not depend on it), a variant agreeing with the claim's `where`, and the
same claimed exponent. A claim no series judged is listed as not measured, with the reason.
"""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text

from effprof.render.escape import plain
from effprof.store.records import is_number as _number

MODE_FREE = ("state_bytes", "params")  # as effprof.measure.harness.MODE_FREE_METRICS: judged in whichever mode measured them


def claims_beside_fits(spec, fits: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (claim, judging series): the claim, the series, the measured exponent, its interval and verdict."""
    from effprof.analyse.frames import fmt_value, plain_value

    rows = []
    for claim in spec.claims:
        where = {k: plain_value(v) for k, v in (claim.where or {}).items()}
        judged = [f for f in fits if f.get("mechanism") == spec.name and f.get("metric") == claim.metric and f.get("axis") == claim.axis
                  and (f.get("mode") == claim.mode or claim.metric in MODE_FREE)
                  and _number(f.get("claimed")) and float(f["claimed"]) == float(claim.exponent)
                  and all((f.get("config") or {}).get(k, v) == v for k, v in where.items())]
        if claim.metric in MODE_FREE and judged:  # the same figure in every mode: the claim's own mode, or the first
            judged = [f for f in judged if f.get("mode") == claim.mode] or judged[:1]
        base = {"metric": claim.metric, "axis": claim.axis, "claimed": claim.exponent, "mode": claim.mode,
                "where": ", ".join(f"{k}={fmt_value(v)}" for k, v in where.items())}
        if not judged:
            rows.append({**base, "series": "", "measured": None, "ci_low": None, "ci_high": None, "verdict": "not measured",
                         "reason": f"no series of 3 or more {claim.axis} values in {claim.mode} mode"
                                   + (f" with {base['where']}" if where else "")})
        for f in judged:
            measured = f.get("leading_exponent") if _number(f.get("leading_exponent")) else f.get("exponent")
            rows.append({**base, "series": f.get("variant") or "", "measured": measured, "ci_low": f.get("leading_ci_low"),
                         "ci_high": f.get("leading_ci_high"), "verdict": f.get("verdict"),
                         "reason": f.get("verdict_reason") or "", "uncertain": bool(f.get("uncertain") in (True,))})
    return rows


VERDICT_STYLE = {"pass": "green", "fail": "bold red", "inconclusive": "yellow", "not measured": "dim"}


def claims_table(rows: list[dict[str, Any]], source: str) -> Table:
    table = Table(title=plain(f"claims beside the exponents measured in {source}"), title_justify="left")  # a path: no markup
    for column in ("metric", "∝ axis^claimed", "mode", "where", "series", "measured [95% CI]", "verdict"):
        table.add_column(column, justify="right" if column.startswith("measured") else "left")
    for row in rows:
        measured = "–"
        if _number(row["measured"]):
            measured = f"{row['measured']:.2f}" + (f" [{row['ci_low']:.2f}, {row['ci_high']:.2f}]" if _number(row["ci_low"]) else "")
        verdict = plain(row["verdict"], VERDICT_STYLE.get(row["verdict"], ""))
        if row.get("uncertain"):
            verdict = plain(f"{row['verdict']} (noisy timings: uncertain)", "dim")
        if row["reason"] and row["verdict"] != "pass":
            verdict = Text.assemble(verdict, plain(f" ({row['reason']})", "dim"))
        table.add_row(plain(row["metric"]), plain(f"{row['axis']}^{row['claimed']:g}"), plain(row["mode"]), plain(row["where"]),
                      plain(row["series"]), measured, verdict)
    return table
