"""A lab's HTML page: the week, its concept and findings, the lab's own tables and matrices, then effprof's
report of the measurements (effprof.render.html) below. Everything shown is escaped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from effprof.render.escape import html_text

MARKER = "<body>"


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return html_text(value)


def _table(data: dict[str, Any]) -> str:
    head = "".join(f"<th>{_cell(c)}</th>" for c in data["columns"])
    body = "".join("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>" for row in data["rows"])
    return f"<h3>{_cell(data['title'])}</h3><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _heatmap(data: dict[str, Any]) -> str:
    import plotly.graph_objects as go

    from effprof.render.html import _div

    fig = go.Figure(go.Heatmap(z=data["heatmap"], colorscale="Viridis", colorbar={"title": "weight"}))
    fig.update_layout(title=data["title"], yaxis={"autorange": "reversed", "title": "query"}, xaxis={"title": "key"},
                      width=560, height=520)
    return _div(fig)


def lab_section(result) -> str:
    """The lab's own part of the page: concept, findings, extra tables and matrices."""
    lab = result.lab
    items = "".join(
        f"<li><b>{_cell(f.look_at)}</b>: <code>{_cell(f.measured)}</code>{(' — ' + _cell(f.meaning)) if f.meaning else ''}</li>"
        for f in result.findings)
    parts = [f"<section id='lab'><h2>Week {lab.week}: {_cell(lab.title)}</h2><p>{_cell(lab.concept)}</p>",
             f"<h3>What to look at</h3><ul>{items}</ul>"]
    for data in result.extras.values():
        if isinstance(data, dict) and "heatmap" in data:
            parts.append(_heatmap(data))
        elif isinstance(data, dict) and "rows" in data:
            parts.append(_table(data))
        elif isinstance(data, list):
            parts.extend(_table(d) for d in data)
    parts.append("<p>Below: effprof's report of this lab's measurements (fits, verdicts, crossovers, every record).</p></section>")
    return "".join(parts)


def write_page(result, path: str | Path) -> str:
    """effprof's report of the session with the lab's section first; written atomically."""
    from effprof.render import html
    from effprof.store.records import atomic_writer

    page = html.render(result.session)
    section = lab_section(result)
    at = page.find(MARKER, max(page.rfind("</head>"), 0))  # the page's body tag, never one inside the inlined plotly.js
    page = page[: at + len(MARKER)] + section + page[at + len(MARKER):] if at >= 0 else section + page
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_writer(path) as f:
        f.write(page)
    return str(path)
