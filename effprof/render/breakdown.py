"""The per-module breakdown, rendered: a console tree for one record, a stacked share chart across a sweep.

Both read the record field `breakdown: {path: {type, calls, flops, time_s, peak_bytes}}`
(effprof.measure.breakdown); figures are inclusive per module, so a parent's own work is
what its children leave: the chart stacks the root's direct children plus "(rest)",
the root's cost that none of them accounts for.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go
from rich.table import Table

from effprof.analyse.fit_breakdown import REST, breakdown_frame
from effprof.render import axes, style
from effprof.render.console import human
from effprof.render.escape import plain, plotly_text
from effprof.store.metrics import metric as table_entry


def breakdown_tree(record: dict[str, Any]) -> Table:
    """`effprof profile --breakdown`: submodules indented by depth, with FLOPs, share, time and peak memory."""
    tree = record["breakdown"]
    root = tree.get("", {})
    total = root.get("flops") or 0.0
    table = Table(title=plain(f"{record['mechanism']}: cost per submodule (inclusive: a module includes its children)"),
                  title_justify="left")
    for column in ("module", "type", "calls", table_entry("flops").short, "share", table_entry("time_s").short, table_entry("peak_bytes").short):
        table.add_column(column, justify="left" if column in ("module", "type") else "right")
    levels = tree_levels(tree)
    for path in tree:  # named_modules() order: parents before children, layers in order
        row = tree[path]
        parent = path.rpartition(".")[0]
        # a child of a row above reads by its own name; a layer of a list (whose container has no row) by its path
        name = path.rpartition(".")[2] if parent in tree else path
        label = record["mechanism"] if path == "" else "  " * levels[path] + name
        share = f"{100 * row['flops'] / total:.1f}%" if total and row.get("flops") is not None else "–"
        table.add_row(plain(label), plain(row.get("type", "")), plain(row.get("calls", "")), human(row.get("flops"), "flops"),
                      share, human(row.get("time_s"), "time"), human(row.get("peak_bytes"), "bytes"))
    if root.get("flops_analytic"):
        table.caption = f"analytic (the spec's cost model): {human(root['flops_analytic'], 'flops')} {table_entry('flops').short}"
    return table


def tree_levels(tree: dict[str, Any]) -> dict[str, int]:
    """Each path's level in the tree: one below its nearest ancestor that has a row (a ModuleList has none: it never
    runs), so `layers.0.self_attn` sits under `layers.0`, one level below the root's children."""
    levels = {"": 0}
    for path in tree:
        if not path:
            continue
        ancestor = path.rpartition(".")[0]
        while ancestor and ancestor not in tree:
            ancestor = ancestor.rpartition(".")[0]
        levels[path] = levels.get(ancestor, 0) + 1
    return levels


def share_figure(frame: pd.DataFrame, mechanism: str, metric: str = "flops", mode: str = "forward") -> go.Figure | None:
    """Stacked share of `metric` per top-level submodule of `mechanism` against the swept size (None: no data).

    Each band is a direct child of the module ("(rest)": the module's own work between them), as a percentage of
    the whole at that size: the picture of where a layer becomes attention-bound as the sequence grows.
    """
    long = breakdown_frame(frame)
    long = long[(long["mechanism"] == mechanism) & (long["mode"] == mode) & long[metric].notna()]
    if long.empty or long["size"].isna().all():
        return None
    by_size = long.groupby(["size", "path"], sort=True)[metric].median().unstack("path")
    if "" not in by_size.columns or len(by_size) < 1:
        return None
    total = by_size[""]
    children = [p for p in dict.fromkeys(long["path"]) if p and "." not in p]  # the module's own order
    shares = pd.DataFrame({p: by_size[p] / total for p in children})
    shares[REST] = (1.0 - shares.sum(axis=1)).clip(lower=0.0)
    fig = go.Figure()
    for i, path in enumerate(shares.columns):
        kind = long.loc[long["path"] == path, "type"].iloc[0] if path != REST else "the module's own ops"
        fig.add_trace(go.Scatter(x=shares.index, y=100 * shares[path], name=f"{path} ({kind})", mode="lines", stackgroup="share",
                                 line={"color": style.OKABE_ITO[i % len(style.OKABE_ITO)], "width": 0.5},
                                 customdata=[plotly_text(path)] * len(shares), hovertemplate="%{customdata}: %{y:.1f}%<extra></extra>"))
    words = table_entry(metric).short  # a breakdown field (flops, time_s, peak_bytes) by its metric's short label
    fig.update_layout(xaxis=axes.size_axis(_axis_name(frame), list(shares.index)),
                      yaxis={"title": {"text": f"share of the layer's {words} (%)"}, "range": [0, 100]})
    style.screen_layout(fig, f"{mechanism} ({mode}): {words} by submodule")
    return fig.update_layout(legend={"orientation": "h", "y": -0.25, "yanchor": "top"}, meta={"name": axes.figure_name("share", mechanism, metric)})


def share_figures(frame: pd.DataFrame, metric: str = "flops") -> list[tuple[str, go.Figure]]:
    """(mechanism, figure) for every mechanism of `frame` whose records carry a breakdown in forward mode."""
    if "breakdown" not in frame.columns:
        return []
    out = []
    for mechanism in dict.fromkeys(frame["mechanism"]):
        fig = share_figure(frame, mechanism, metric)
        if fig is not None:
            out.append((mechanism, fig))
    return out


def _axis_name(frame: pd.DataFrame) -> str:
    from effprof.analyse.frames import swept_axis

    return swept_axis(frame) or "size"
