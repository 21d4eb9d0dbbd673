"""Attention-pattern heatmaps: a self-contained HTML page (plotly.js inlined, no network).

Takes the plain data of effprof.mechanisms.sparse.pattern.pattern_data (numpy (query, key)
coordinates; never torch) and draws which keys each query attends. Up to `max_cells` positions
per axis each cell is one (query, key) pair; beyond, positions are binned and a cell shows the
fraction of its pairs that are attended, counted from the coordinates (np.bincount), so a
4096-token pattern never becomes a 4096×4096 matrix.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go

from effprof.render.escape import plotly_strings

MAX_CELLS = 512

PAGE = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;color:#222}} table{{border-collapse:collapse}}
td,th{{padding:2px 10px;text-align:left;border-bottom:1px solid #ddd}} .note{{color:#666}}</style></head>
<body>
<h1>{title}</h1>
<p>{summary}</p>
{figure}
<h2>Config</h2>
<table>{config_rows}</table>
<p class="note">{note}</p>
</body>
</html>
"""


def binned(data: dict[str, Any], max_cells: int = MAX_CELLS) -> tuple[np.ndarray, int]:
    """(cells, cells) fraction of attended pairs per bin, and the bin width in positions."""
    n = int(data["n"])
    width = -(-n // max_cells)
    cells = -(-n // width)
    rows = np.asarray(data["rows"], dtype=np.int64) // width
    cols = np.asarray(data["cols"], dtype=np.int64) // width
    counts = np.bincount(rows * cells + cols, minlength=cells * cells).reshape(cells, cells).astype(float)
    sizes = np.minimum(width, n - np.arange(cells) * width).astype(float)  # positions per bin (the last may be short)
    return (counts / np.outer(sizes, sizes)).astype(np.float32), width


def pattern_figure(data: dict[str, Any], max_cells: int = MAX_CELLS) -> go.Figure:
    """Heatmap of queries (rows, top to bottom) by keys (columns)."""
    z, width = binned(data, max_cells)
    axis = np.arange(z.shape[0]) * width
    label = "attended" if width == 1 else f"fraction attended ({width}×{width} positions per cell)"
    fig = go.Figure(go.Heatmap(
        z=z, x=axis, y=axis, zmin=0, zmax=1, colorscale="Blues", colorbar={"title": {"text": "attended" if width == 1 else "fraction"}},
        hovertemplate="query %{y}, key %{x}: %{z:.2f}<extra></extra>" if width > 1 else "query %{y}, key %{x}<extra></extra>",
    ))
    fig.update_layout(
        title=f"{data['name']}: {data['pairs']:,} pairs, density {data['density']:.2%}",
        xaxis={"title": "key position (token index)", "constrain": "domain"},
        yaxis={"title": "query position (token index)", "autorange": "reversed", "scaleanchor": "x"},
        width=760, height=720, margin={"l": 70, "r": 30, "t": 60, "b": 60},
    )
    fig.update_layout(title={"x": 0, "xref": "paper", "xanchor": "left"}, margin={"t": 72})  # clear of plotly's toolbar
    fig.data[0].name = label
    return fig


def write_pattern_html(data: dict[str, Any], path: str) -> str:
    """Write the pattern of `data` (from pattern_data) as a self-contained HTML page; returns the path."""
    fig = pattern_figure(data)
    n = int(data["n"])
    escape = html.escape
    title = f"{data['name']} attention pattern, n = {n}"
    summary = (f"{data['pairs']:,} attended (query, key) pairs, {data['density']:.2%} of "
               f"{'causal' if data.get('causal', True) else 'full'} attention; "
               f"{data['pairs'] / max(n, 1):.1f} keys per query on average.")
    rows = "".join(f"<tr><th>{escape(str(k))}</th><td>{escape(str(v))}</td></tr>" for k, v in sorted(data.get("config", {}).items()))
    page = PAGE.format(
        title=escape(title),
        summary=escape(summary),
        figure=plotly_strings(fig).to_html(full_html=False, include_plotlyjs=True),
        config_rows=rows,
        note=escape("Dynamic patterns (reformer, routing, topk_attention, block_sparse) depend on the input: "
                    "this is the pattern for a fixed-seed random input, batch 0, union over heads."),
    )
    from effprof.store.records import atomic_writer

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_writer(out) as f:  # as every file effprof writes: never through a symlink, never into a FIFO
        f.write(page)
    return str(out)
