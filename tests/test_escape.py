"""Every output escaped for its format: hostile strings in, nothing executed or injected out."""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET

from hypothesis import given, settings
from hypothesis import strategies as st

from effprof.render.escape import _TEX, csv_cell, plain, terminal, tex, xml_text

HOSTILE = [
    "\x1b]0;pwned\x07title", "\x1b[2J\x1b[Hclear", "\x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\", "bell\x07", "cr\roverwrite",
    r"\input{/etc/passwd}", "100% & $x$ #1 _a {b} ~c ^d \\", "=HYPERLINK(\"http://evil\")", "+1+1", "-2+3", "@SUM(A1)",
    "  =1+1", "[/path]", "[bold red]not markup[/]", "nul\x00byte", "\x9b31mC1 CSI", "\ufffe\ud800",
]
text = st.one_of(st.text(), st.sampled_from(HOSTILE), st.lists(st.sampled_from(HOSTILE + ["a", " ", "="])).map("".join))


def _is_control(ch: str) -> bool:
    code = ord(ch)
    return code < 0x20 or 0x7F <= code <= 0x9F


@settings(max_examples=150, deadline=None)
@given(text)
def test_terminal_text_has_no_control_characters(s):
    assert not any(_is_control(ch) for ch in terminal(s))


def test_terminal_removes_whole_escape_sequences():
    assert terminal("\x1b]0;pwned\x07title") == "title"
    assert terminal("\x1b[31mred\x1b[0m") == "red"
    assert terminal("a\nb") == "a b"


def test_plain_is_never_markup():
    from rich.console import Console

    console = Console(file=io.StringIO(), width=200, color_system=None)
    console.print(plain("[/path] and [bold]x[/bold]"))  # rich would raise MarkupError parsing "[/path]"
    assert console.file.getvalue().strip() == "[/path] and [bold]x[/bold]"


@settings(max_examples=150, deadline=None)
@given(text)
def test_tex_leaves_no_special_character_unescaped(s):
    out = tex(s)
    for escaped in sorted(_TEX.values(), key=len, reverse=True):
        out = out.replace(escaped, "")
    assert not set(out) & set("\\&%$#_{}~^")
    assert not any(_is_control(ch) for ch in out)


def test_tex_backslash_and_braces():
    assert tex("\\") == r"\textbackslash{}"  # not \textbackslash\{\}, which prints "\{}"
    assert tex(r"\input{x}") == r"\textbackslash{}input\{x\}"
    assert tex("a_b") == r"a\_b"


@settings(max_examples=150, deadline=None)
@given(st.lists(text, min_size=1, max_size=5))
def test_csv_cells_never_start_a_formula(cells):
    buffer = io.StringIO()
    csv.writer(buffer).writerow([csv_cell(c) for c in cells])
    for cell in next(csv.reader(io.StringIO(buffer.getvalue()))):
        assert not cell.lstrip(" ").startswith(("=", "+", "-", "@", "\t", "\r")), cell


def test_csv_cell_keeps_numbers_and_plain_strings():
    assert csv_cell(-2.5) == -2.5
    assert csv_cell("mamba") == "mamba"
    assert csv_cell("=1+1") == "'=1+1"


@settings(max_examples=150, deadline=None)
@given(text)
def test_xml_text_always_parses(s):
    element = ET.Element("testcase", name=xml_text(s))
    element.text = xml_text(s)
    parsed = ET.fromstring(ET.tostring(element, encoding="unicode"))
    assert parsed.tag == "testcase"


def test_the_checks_above_catch_raw_strings():
    """The predicates fail on unescaped input, so the properties above can fail."""
    assert any(_is_control(ch) for ch in "\x1b]0;pwned\x07title")
    assert set(r"\input{x}") & set("\\&%$#_{}~^")
    element = ET.Element("testcase", name="nul\x00byte")
    try:
        ET.fromstring(ET.tostring(element, encoding="unicode"))
    except ET.ParseError:
        pass
    else:
        raise AssertionError("raw control characters should make the XML unparsable")


def test_lone_surrogates_are_removed_so_every_output_encodes():
    """JSON's "\\ud800" reads as a lone surrogate; a UTF-8 file (CSV, .tex) or a terminal cannot take it."""
    for out in (terminal("a\ud800b"), tex("a\udfffb"), csv_cell("\ud800=1")):
        out.encode("utf-8")
    assert csv_cell("\ud800=1") == "'=1"  # removed before the formula check, not after
    try:
        "a\ud800b".encode("utf-8")
    except UnicodeEncodeError:
        pass
    else:
        raise AssertionError("a lone surrogate should not encode")


def test_tex_braces_what_a_table_row_would_take_as_its_argument():
    # after a row's \\ a cell "[5cm]" would be read as \\[5cm] (vertical space), "*x" as \\* (the star lost)
    assert tex("[5cm]") == "{[}5cm{]}"
    assert tex("*x") == "{*}x"
    assert tex("<a|b>") == r"\textless{}a\textbar{}b\textgreater{}"  # OT1 would print ¡a—b¿


def test_html_text_escapes_markup_and_quotes_for_pages_built_outside_the_template():
    from effprof.course.page import _table
    from effprof.render.escape import html_text

    assert html_text('<script>x</script> "a" \'b\' &') == "&lt;script&gt;x&lt;/script&gt; &quot;a&quot; &#x27;b&#x27; &amp;"
    page = _table({"title": "<b>t</b>", "columns": ["<i>c</i>"], "rows": [["<script>alert(1)</script>", 1.5]]})
    assert "<script>" not in page and "<b>" not in page and "<i>" not in page and "&lt;script&gt;" in page


def test_hardware_check_script_prints_a_results_files_text_escaped(tmp_path):
    """scripts/hardware-check.py prints lines made of a results file's mechanism and device names: no control character
    of the file reaches the terminal (it printed them raw)."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    record = {"schema": 2, "mechanism": "x\x1b[31mRED", "family": "f", "mode": "forward", "status": "ok", "error": "", "seq_len": 16,
              "d_model": 8, "batch": 1, "device_name": "gpu\x1b]0;title\x07", "time_s": 0.001}
    results = tmp_path / "r.jsonl"
    results.write_text(json.dumps(record) + "\n", encoding="utf-8")
    script = Path(__file__).resolve().parents[1] / "scripts" / "hardware-check.py"
    run = subprocess.run([sys.executable, str(script), str(results)], capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0 and "skipped" in run.stdout and "RED" in run.stdout, run.stdout + run.stderr
    assert "\x1b" not in run.stdout and "\x07" not in run.stdout


def test_the_claims_table_title_shows_a_results_path_as_text():
    """`effprof explain NAME --results PATH` names the path in the table's title: rich parsed it as markup (and kept ESC)."""
    from rich.console import Console

    from effprof.render.claims import claims_table

    console = Console(record=True, width=200)
    console.print(claims_table([], "r[bold]x[/bold]\x1b[31m.jsonl"))
    shown = console.export_text()
    assert "r[bold]x[/bold]" in shown and "\x1b" not in shown
