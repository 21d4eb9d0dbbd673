"""Exports for papers (effprof.render.export), and every output format fed hostile strings in every field.

The LaTeX is checked by structure (`tex_structure`: every command one effprof writes, braces and
environments balanced, every row as wide as its tabular, no special character left raw), and compiled
with pdflatex where one is installed. The hypothesis strategy `sessions` draws records over the
record schema (records.Record) with hostile text in every string field, analyses them
(effprof.analyse.session.analyse) and feeds the session to each renderer: LaTeX, CSV, HTML, terminal, JUnit.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import io
import re
import shutil
import subprocess
import typing
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from effprof.analyse.session import analyse
from effprof.config import KEYS
from effprof.render import export
from effprof.render.escape import CSV_FORMULA_START
from effprof.store import records

# ---- hostile text ----------------------------------------------------------------------------

HOSTILE = [
    r"\input{/etc/passwd}", r"\immediate\write18{rm -rf x}", "100% & $x$ #1 _a {b} ~c ^d \\", "\\", "}{", "end}",
    "[5cm]", "*star", "<tag>|", "=cmd|'/C calc'!A0", "+1+1", "-2+3", "@SUM(A1)", "  =1+1", "\t=1", "[/path]",
    "[bold red]x[/]", "\x1b]0;pwned\x07title", "\x1b[2J\x1b[Hclear", "\x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\",
    "bell\x07", "cr\roverwrite", "nul\x00byte", "\x9b31mC1", "\ufffe\ud800", "line\nbreak",
    "<script>effprofpwn()</script>", "</script><img src=x onerror=effprofpwn()>", "\"'><svg onload=effprofpwn()>",
]
hostile = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=8),
                    st.lists(st.sampled_from([*HOSTILE, "a", " "]), min_size=1, max_size=3).map("".join))
# the same without lone surrogates (JSON's "\\ud800"), which the HTML report cannot take yet (see below)
encodable = hostile.map(lambda s: re.sub("[\ud800-\udfff]", "", s))
# text pdflatex can typeset (ASCII and the characters escape.tex maps): for the compile test
TYPESET = [s for s in HOSTILE if all(ord(ch) < 0x80 for ch in s)] + ["O(N²d)·φ ≤ ≈ × µs ³"]


def _string_fields() -> list[str]:
    """The record fields (records.Record and the config keys) that hold text, except the ones with a fixed vocabulary."""
    hints = typing.get_type_hints(records.Record)
    fields = [name for name, kind in hints.items() if kind is str] + [k for k, info in KEYS.items() if info.type is str]
    return [f for f in dict.fromkeys(fields) if f not in ("status", "mode", "mechanism", "roofline_limit", "projected_limit")]


STRING_FIELDS = _string_fields()
SIZES = (16, 32, 64, 128)


def _rows(names: list[str], mode: str, impls: list[str], text: dict[str, str], complexity: dict[str, str], kind: str,
          claimed: list[str], error: str) -> list[dict]:
    """Two mechanisms (the first in two impls) over four sizes, whose costs cross; one timing noisy, one point failed."""
    rows = []
    for index, (name, impl, slope) in enumerate(((names[0], impls[0], 2), (names[0], impls[1], 2), (names[1], impls[0], 1))):
        for n in SIZES:
            cost = float(n**2 if slope == 2 else 32 * n)
            rows.append({**text, "schema": records.SCHEMA_VERSION, "mechanism": name, "mode": mode, "status": "ok", "impl": impl,
                         "seq_len": n, "d_model": 16, "flops_counted": cost * (1 + index), "time_s": 1e-7 * cost,
                         "time_iqr_s": 1e-7 * cost * (0.5 if n == 64 and index == 2 else 0.01), "peak_bytes": 4 * cost,
                         "state_bytes": 8 * n, "complexity": complexity, "layer_kinds": {kind: {"time_s": 1e-3}},
                         "claims": [["flops", "seq_len", float(slope), 0.0], [*claimed, 1.0, 0.0]]})
    rows.append({**text, "schema": records.SCHEMA_VERSION, "mechanism": names[1], "mode": mode, "status": "oom", "impl": impls[0],
                 "seq_len": 256, "d_model": 16, "error": error})
    return rows


@functools.cache
def _template_fits() -> pd.DataFrame:
    """The fits of `_rows` with plain names, computed once (fitting is most of analyse's time)."""
    from effprof.analyse.fit import fit_frame

    return fit_frame(records.to_frame(_rows(["A", "B"], "forward", ["x", "y"], {}, {}, "kind", ["flops", "seq_len"], "")))


@st.composite
def sessions(draw: st.DrawFn, hostile: st.SearchStrategy[str] = hostile) -> object:
    """A small valid session over the record schema, hostile text in every string field, the mode, the mechanism
    names, claims, complexity, the command, and the fits' names and verdict reasons."""
    names = draw(st.lists(hostile.filter(lambda s: s.strip()), min_size=2, max_size=2, unique=True))
    mode = draw(st.sampled_from(["forward", "decode"]) | hostile.filter(lambda s: s.strip()))
    impls = draw(st.lists(hostile, min_size=2, max_size=2, unique=True))
    rows = _rows(names, mode, impls, {field: draw(hostile) for field in STRING_FIELDS},
                 {part: draw(hostile) for part in ("prefill", "train", "decode", "state")}, draw(hostile),
                 [draw(hostile), draw(hostile)], draw(hostile))
    assert all(records.validate_record(r) is None for r in rows)
    fits = _template_fits().copy()
    fits["mechanism"] = fits["mechanism"].map({"A": names[0], "B": names[1]})
    fits["variant"] = fits["variant"].map(lambda v: v.replace("impl=x", f"impl={impls[0]}").replace("impl=y", f"impl={impls[1]}"))
    fits["mode"] = mode
    fits["verdict"] = draw(st.sampled_from(["pass", "fail", "inconclusive", "no-claim"]) | hostile)
    fits["verdict_reason"] = draw(hostile)
    return analyse(rows, fits=fits, title=draw(hostile), command=draw(hostile))


# Each example analyses a session (about 0.3 s): few examples, and no shrinking (a failure prints its example as drawn).
HOSTILE_SETTINGS = settings(max_examples=8, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate],
                            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# ---- LaTeX by structure ----------------------------------------------------------------------

# Every command effprof writes, and the ones escape.tex writes for special characters.
TEX_COMMANDS = {
    "begin", "end", "centering", "caption", "label", "toprule", "midrule", "bottomrule", "cmidrule", "multicolumn", "num",
    "rlap", "textsuperscript", "dag", "par", "smallskip", "footnotesize", "raggedright", "arraybackslash", "linewidth",
    "textbackslash", "textasciitilde", "textasciicircum", "textless", "textgreater", "textbar", "ensuremath", "cdot", "phi",
    "leq", "geq", "approx", "times", "mu",
}
ENVIRONMENTS = {"table", "tabular"}
_TOKEN = re.compile(r"\\([A-Za-z]+|.)|([{}&$#^_~%])", re.DOTALL)


def tex_structure(text: str) -> list[str]:
    """What is wrong with a generated .tex by structure (empty when nothing): a command outside TEX_COMMANDS,
    a raw special character, unbalanced braces or environments, a row whose width differs from its tabular's,
    a % anywhere but at the start of a comment line, a control character."""
    problems = []
    body_lines = []
    for number, line in enumerate(text.split("\n"), 1):
        if line.startswith("%"):
            continue  # a comment ends at the line's end; escape.tex keeps newlines out of it
        if any(ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F for ch in line):
            problems.append(f"line {number}: control character")
        body_lines.append(line)
    body = "\n".join(body_lines)
    depth, environments = 0, []
    for match in _TOKEN.finditer(body):
        command, raw = match.groups()
        if command is not None and command.isalpha() and command not in TEX_COMMANDS:
            problems.append(f"command \\{command} is not one effprof writes")
        if raw in ("$", "#", "^", "_", "~", "%"):
            problems.append(f"raw {raw!r} at {match.start()}: {body[max(0, match.start() - 30):match.start() + 10]!r}")
        elif raw == "{":
            depth += 1
        elif raw == "}":
            depth -= 1
            if depth < 0:
                problems.append(f"unbalanced }} at {match.start()}")
                depth = 0
        if command in ("begin", "end"):
            name = re.match(r"\{(\w+)\}", body[match.end():])
            if name is None or name.group(1) not in ENVIRONMENTS:
                problems.append(f"\\{command} of an unknown environment")
            elif command == "begin":
                environments.append(name.group(1))
            elif not environments or environments.pop() != name.group(1):
                problems.append(f"\\end{{{name.group(1)}}} without its \\begin")
    if depth:
        problems.append(f"{depth} unclosed {{")
    if environments:
        problems.append(f"unclosed environments: {environments}")
    problems += _row_widths(body)
    return problems


def _top_level_split(text: str, separator: str) -> list[str]:
    """`text` split at unescaped `separator` characters outside braces."""
    parts, depth, current, index = [], 0, [], 0
    while index < len(text):
        ch = text[index]
        if ch == "\\":
            current.append(text[index:index + 2])
            index += 2
            continue
        depth += (ch == "{") - (ch == "}")
        if ch == separator and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
        index += 1
    return [*parts, "".join(current)]


def _columns(spec: str) -> int:
    """Columns of a tabular spec: l, c, r, S, p{…}; >{…} and @{…} add none."""
    spec = re.sub(r"[>@]\{(?:[^{}]|\{[^{}]*\})*\}", "", spec)
    spec = re.sub(r"[pmb]\{[^{}]*\}", "p", spec)
    return sum(ch in "lcrSp" for ch in spec)


def _row_widths(body: str) -> list[str]:
    problems = []
    for match in re.finditer(r"\\begin\{tabular\}\{((?:[^{}]|\{(?:[^{}]|\{[^{}]*\})*\})*)\}(.*?)\\end\{tabular\}", body, re.DOTALL):
        width = _columns(match.group(1))
        content = re.sub(r"\\(toprule|midrule|bottomrule)|\\cmidrule\(l\)\{\d+-\d+\}", "", match.group(2))
        for row in [r for r in re.split(r"\\\\(?=\s*\n|\s*$)", content) if r.strip()]:
            cells = _top_level_split(row, "&")
            spans = sum(int(m.group(1)) if (m := re.match(r"\s*\\multicolumn\{(\d+)\}", cell)) else 1 for cell in cells)
            if spans != width:
                problems.append(f"a row of {spans} cells in a tabular of {width} columns: {row.strip()[:80]!r}")
    return problems


def _crossing_session(**extra: object) -> object:
    """quadratic is cheaper below n = 64, linear above; one noisy timing; a failed point at 512."""
    rows = []
    for n in (16, 32, 128, 256):
        for name, t in (("quadratic", 1e-6 * n * n), ("linear", 64e-6 * n)):
            rows.append({"schema": records.SCHEMA_VERSION, "mechanism": name, "family": "attention", "mode": "forward",
                         "status": "ok", "seq_len": n, "d_model": 16, "flops_counted": float(n * n if name == "quadratic" else 64 * n),
                         "time_s": t, "time_iqr_s": t * (0.5 if (n, name) == (32, "linear") else 0.01), "peak_bytes": 1024 * n,
                         "claims": [["flops", "seq_len", 2.0 if name == "quadratic" else 1.0, 0.0]],
                         "complexity": {"prefill": "O(N²d)", "decode": "O(Nd)", "state": "O(N·d)"}, **extra})
    rows.append({**rows[0], "seq_len": 512, "status": "timeout", "flops_counted": None, "time_s": None, "time_iqr_s": None,
                 "peak_bytes": None})
    return analyse(rows, command="effprof compare quadratic linear --vary seq_len=16,32,128,256")


def test_structure_check_catches_what_it_is_for():
    """tex_structure fails on raw data, so passing it means something."""
    table = export._table("c", "tab:x", ["A", "B"], [[r"\input{x}", "a_b"]], "ll")
    assert any("\\input" in p for p in tex_structure(table)) and any("'_'" in p for p in tex_structure(table))
    assert any("2 columns" in p for p in tex_structure(export._table("c", "tab:x", ["A", "B"], [["x & y", "z"]], "ll")))
    assert any("unclosed" in p for p in tex_structure(export._table("c", "tab:x", ["A"], [["{x"]], "l")))
    assert tex_structure(export._table("c", "tab:x", ["A", "B"], [[export._cell(r"\input{x}"), export._cell("a_b & c")]], "ll")) == []


def test_raw_values_table_units_noise_marker_and_statuses():
    tex = export.latex(_crossing_session())
    assert tex_structure(tex) == []
    time_table = tex.split(r"\label{tab:effprof-values-forward-time}")[1].split(r"\end{table}")[0]
    # 256 µs … 65.5 ms: one unit for the whole table, in its header and caption
    assert r"\multicolumn{1}{l}{time per forward pass (ms)}" in time_table and "Time per forward pass (ms)" in tex
    assert r"quadratic & \num{0.256} & \num{1.02} & \num{16.4} & \num{65.5} & timeout \\" in time_table
    assert time_table.count(r"\rlap{\textsuperscript{\dag}}") == 1  # the one noisy point
    assert r"noisy timing: IQR/median above 10\%" in time_table
    assert r"\multicolumn{5}{c}{sequence length (tokens)}" in time_table  # the failed size (512) has its column
    assert r"\toprule" in time_table and r"\midrule" in time_table and r"\bottomrule" in time_table
    flops_table = tex.split(r"\label{tab:effprof-values-forward-flops}")[1].split(r"\end{table}")[0]
    assert "kFLOP" in flops_table and r"\dag" not in flops_table  # counted quantities are never noisy
    memory = tex.split(r"\label{tab:effprof-values-forward-peak-memory}")[1].split(r"\end{table}")[0]
    assert "peak memory (KiB)" in memory


def test_crossover_table_says_which_series_is_cheaper_on_each_side():
    tex = export.latex(_crossing_session())
    table = tex.split(r"\label{tab:effprof-crossovers}")[1].split(r"\end{table}")[0]
    caption = tex.split(r"\label{tab:effprof-crossovers}")[0].rsplit(r"\caption{", 1)[1]
    assert "Cheaper below & Cheaper above" in table
    # quadratic is cheaper below n = 64 and linear above, for FLOPs and for time
    assert r"forward & FLOPs (counted) & quadratic & linear & \num{64}" in table
    assert "cheaper at smaller sizes" in caption and "at larger sizes" in caption
    assert "second-named" not in tex


def test_inconclusive_verdicts_show_their_reason_in_a_note():
    session = _crossing_session()
    session.fits[0] = {**session.fits[0], "verdict": "inconclusive", "verdict_reason": "too few sizes: measure up to n = 4096_x"}
    tex = export.latex(session)
    assert tex_structure(tex) == []
    assert r"inconclusive\textsuperscript{a}" in tex
    assert r"\textsuperscript{a} too few sizes: measure up to n = 4096\_x" in tex


def _every_string(session: object, payload: str) -> object:
    """`session` with `payload` in every string field of its records (record schema and mechanism, mode, family,
    status), fits, crossovers and complexity rows, and its command."""
    def replace(row: dict) -> dict:
        return {k: (payload if isinstance(v, str) and k not in ("verdict",) else v) for k, v in row.items()}

    return dataclasses.replace(
        session, records=[{**replace(r), **{f: payload for f in STRING_FIELDS}} for r in session.records],
        fits=[{**replace(f), "verdict_reason": payload} for f in session.fits], crossovers=[replace(c) for c in session.crossovers],
        complexity=[replace(c) for c in session.complexity], command=payload)


def test_every_string_field_reaches_latex_escaped():
    """Sessions whose every string is `\\input{...}` and friends: nothing but effprof's own commands comes out."""
    session = _crossing_session()
    for payload in TYPESET:
        tex = export.latex(_every_string(session, payload))
        assert tex_structure(tex) == [], payload
    assert "input" in export.latex(_every_string(session, r"\input{x}"))  # it is there, as text


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed (apt-get install texlive-latex-base "
                    "texlive-latex-recommended texlive-science)")
def test_generated_tables_compile_with_booktabs_and_siunitx(tmp_path):
    payload = " ".join(TYPESET)
    session = _crossing_session(impl="a]b")
    session.records[0]["mechanism"] = session.records[1]["mechanism"] = "quadratic"
    session.fits[0] = {**session.fits[0], "verdict": "inconclusive", "verdict_reason": payload}
    session.complexity[0] = {**session.complexity[0], "prefill": payload}
    session.crossovers[0] = {**session.crossovers[0], "cheaper_below": "[5cm]" + payload, "at": 64.0}
    session.module_fits = [{"mechanism": "quadratic", "mode": "forward", "path": "core", "module": payload, "type": "[5cm]" + payload,
                            "metric": "time_s", "axis": "seq_len", "exponent": 2.0, "ci_low": 1.9, "ci_high": 2.1}]
    (tmp_path / "tables.tex").write_text(export.latex(session), encoding="utf-8")
    (tmp_path / "paper.tex").write_text("\\documentclass{article}\n\\usepackage{booktabs}\n\\usepackage{siunitx}\n"
                                        "\\begin{document}\n\\input{tables}\n\\end{document}\n", encoding="utf-8")
    run = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape", "paper.tex"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120, check=False)
    errors = [line for line in run.stdout.splitlines() if line.startswith("!")]
    assert run.returncode == 0 and not errors, errors or run.stdout[-2000:]
    assert (tmp_path / "paper.pdf").read_bytes().startswith(b"%PDF")


@HOSTILE_SETTINGS
@given(session=sessions())
def test_latex_of_hostile_records_is_only_effprofs_markup(session):
    assert tex_structure(export.latex(session)) == []


# ---- CSV -----------------------------------------------------------------------------------------


def _formula_cells(path: str) -> list[str]:
    """Cells a spreadsheet would evaluate: starting with = + - @ (after blanks) and not a plain number."""
    bad = []
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.reader(handle):
            for cell in row:
                if cell.lstrip(" ").startswith(CSV_FORMULA_START):
                    try:
                        float(cell)
                    except ValueError:
                        bad.append(cell)
    return bad


def test_csv_keeps_numbers_and_neutralises_formulas(tmp_path):
    session = _crossing_session(device_name="=cmd|'/C calc'!A0", impl="@SUM(A1)")
    session.fits[0] = {**session.fits[0], "exponent": -0.5, "variant": "-2+3"}
    paths = export.write_csv(session, tmp_path / "r.csv")
    assert len(paths) == 4 and [_formula_cells(p) for p in paths] == [[], [], [], []]
    text = Path(paths[0]).read_text(encoding="utf-8")
    assert "'=cmd|'/C calc'!A0" in text and "'@SUM(A1)" in text
    fits = list(csv.DictReader(io.StringIO(Path(paths[1]).read_text(encoding="utf-8"))))
    assert fits[0]["exponent"] == "-0.5" and fits[0]["variant"] == "'-2+3"  # a negative number stays a number


def test_formula_check_catches_a_raw_formula(tmp_path):
    path = tmp_path / "raw.csv"
    path.write_text("a,b\n=1+1,-2\n", encoding="utf-8")
    assert _formula_cells(str(path)) == ["=1+1"]


@HOSTILE_SETTINGS
@given(session=sessions())
def test_csv_of_hostile_records_starts_no_formula(session, tmp_path_factory):
    paths = export.write_csv(session, tmp_path_factory.mktemp("csv") / "r.csv")
    assert len(paths) == 4 and [_formula_cells(p) for p in paths] == [[], [], [], []]


# ---- HTML, terminal, JUnit ------------------------------------------------------------------------


class _Tags(HTMLParser):
    """Tags a browser would build from a page: data that became markup shows up here."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.injected: list[str] = []
        self._script = False

    def handle_starttag(self, tag, attrs):
        self._script = tag == "script"
        if tag in ("img", "svg") or any("effprofpwn" in (value or "") for name, value in attrs if name.startswith("on")):
            self.injected.append(f"<{tag} {attrs}>")

    def handle_data(self, data):
        if self._script and data.lstrip().startswith("effprofpwn"):
            self.injected.append(f"<script>{data[:40]}")

    def handle_endtag(self, tag):
        self._script = False


def test_html_check_catches_injected_tags():
    parser = _Tags()
    parser.feed("<p></script><img src=x onerror=effprofpwn()><script>effprofpwn()</script></p>")
    assert len(parser.injected) == 2


@settings(HOSTILE_SETTINGS, max_examples=4)
@given(session=sessions(encodable))
def test_html_of_hostile_records_builds_no_tag_from_data(session):
    from effprof.render.html import render

    parser = _Tags()
    parser.feed(render(session))
    assert parser.injected == []


def test_a_lone_surrogate_record_is_skipped_on_read(tmp_path):
    """JSON can spell a lone surrogate (\\ud800), which no output can encode (plotly's JSON, a UTF-8 file):
    reading skips that record with its line number and keeps the rest, so no renderer ever meets one."""
    import json
    import warnings

    from effprof.store.records import SCHEMA_VERSION, read

    good = {"schema": SCHEMA_VERSION, "mechanism": "m", "mode": "forward", "status": "ok", "seq_len": 8}
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps({**good, "device_name": "a\ud800b"}) + "\n" + json.dumps(good) + "\n", encoding="utf-8")
    assert "\\ud800" in path.read_text(encoding="utf-8")  # json.dumps wrote the escape, as a crafted file would
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert read(path) == [good]
    assert any("r.jsonl:1" in str(w.message) and "surrogate" in str(w.message) for w in caught)


def _control_characters(text: str) -> list[str]:
    return [repr(ch) for ch in text if (ord(ch) < 0x20 and ch != "\n") or 0x7F <= ord(ch) <= 0x9F]


@HOSTILE_SETTINGS
@given(session=sessions())
def test_terminal_tables_of_hostile_records_carry_no_control_characters(session):
    from rich.console import Console

    from effprof.render.console import session_tables, summary_lines

    console = Console(file=io.StringIO(), width=250, color_system=None, force_terminal=False)
    for table in session_tables(session):
        console.print(table)
    for line in summary_lines(session):
        console.print(line)
    assert _control_characters(console.file.getvalue()) == []


@HOSTILE_SETTINGS
@given(st.lists(hostile, min_size=6, max_size=6))
def test_junit_of_hostile_checks_parses(texts):
    from effprof.check import Check, CheckResult, junit_xml

    check = Check(mechanism=texts[0], axis=texts[1], values=[16, 32, 64], metric=texts[2], exponent=1.0, tolerance=0.1,
                  name=texts[3], params={"impl": texts[4]})
    results = [CheckResult(check=check, verdict="fail", fit=None, error=texts[5]),
               CheckResult(check=check, verdict="pass", fit=None, notes=[texts[5]])]
    suites = ET.fromstring(junit_xml(results).split("\n", 1)[1])
    assert len(suites.findall(".//testcase")) == 2
