"""The terminal: `effprof compare` leads with one summary that fits a screen, piped output is not wrapped at 80
columns, and no string from data or plugins reaches the terminal as an escape sequence or as rich markup."""

from __future__ import annotations

import copy
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from effprof.analyse.session import Session, analyse, crossovers
from effprof.cli import app
from effprof.render.console import crossover_lines, session_tables, summary_lines, summary_screen, summary_table
from effprof.store import records
from effprof.store.metrics import NOISY_MARK
from tests.plugins.hostile import HOSTILE

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()
SCREEN_LINES, SCREEN_COLUMNS = 50, 160
# What an attacker would put in a field: retitle, clear screen, an OSC 8 link, a bell, a C1 CSI, rich markup.
HOSTILE_STRINGS = [HOSTILE, "\x1b]0;pwned\x07", "\x1b[2J", "\x1b]8;;http://evil\x1b\\x\x1b]8;;\x1b\\", "[/path]", "[bold]b[/bold]"]


def _control_characters(text: str) -> list[str]:
    """The characters of `text` a terminal would act on (newlines apart): ESC, BEL, other C0, DEL and C1."""
    return [ch for ch in text if (ord(ch) < 0x20 and ch != "\n") or 0x7F <= ord(ch) <= 0x9F]


def _point(mechanism: str, mode: str, n: int, flops: float, time_s: float, iqr: float = 0.01, exponent: float = 1.0,
           memory: int = 1, **extra) -> dict:
    return {"schema": records.SCHEMA_VERSION, "mechanism": mechanism, "family": "attention", "mode": mode, "seq_len": n,
            "d_model": 16, "status": "ok", "flops_counted": flops, "flops_analytic": flops, "time_s": time_s,
            "time_iqr_s": iqr * time_s, "peak_bytes": 1000 * memory * n, "state_bytes": 10 * memory * n,
            "claims": [["flops", "seq_len", exponent, 0.0], ["state_bytes", "seq_len", 1.0, 0.0]],
            "load_avg_1m": 0.5, "cpu_count": 2, **extra}


def _six_mechanisms() -> list[dict]:
    """Six series in two modes at four sizes, as the default compare measures: one quadratic, five linear
    at different constants, so the quadratic one is overtaken inside the range (time and forward FLOPs: at 600,
    1200, 1800; decode FLOPs: at 300 ... 1500) and the linear ones never cross."""
    rows = []
    for n in (256, 512, 1024, 2048):
        rows.append(_point("quadratic", "forward", n, 100.0 * n * n, 1e-7 * n * n, exponent=2.0))
        rows.append(_point("quadratic", "decode", n, 200.0 * n, 1e-7 * n))
        for k, name in enumerate(("lin_a", "lin_b", "lin_c", "lin_d", "lin_e")):
            scale = 60_000.0 * (k + 1)
            rows.append(_point(name, "forward", n, scale * n, scale * 1e-9 * n, memory=k + 2))
            rows.append(_point(name, "decode", n, scale, scale * 1e-9, exponent=0.0, memory=k + 2))
    return rows


@pytest.fixture(scope="module")
def six() -> Session:
    """The six series analysed once (fits bootstrap: seconds); a test that changes it takes a copy."""
    return analyse(_six_mechanisms())


def _shown(*parts, width: int = SCREEN_COLUMNS, color: bool = False) -> str:
    console = Console(file=io.StringIO(), width=width, color_system="truecolor" if color else None, force_terminal=color)
    for part in parts:
        console.print(part, soft_wrap=not hasattr(part, "columns"))
    return console.file.getvalue()


# ---- the main job ----------------------------------------------------------------------------------------


def test_default_output_fits_one_screen_and_every_table_stays_behind_verbose(six):
    session = six
    short = _shown(*summary_screen(session, "out/compare.html"))
    full = _shown(*session_tables(session), *summary_lines(session))
    lines = short.splitlines()
    assert len(lines) <= SCREEN_LINES and max(map(len, lines)) <= SCREEN_COLUMNS
    assert len(full.splitlines()) > 2 * len(lines)  # --verbose still has every table
    assert "none in range" in full and "none in range" not in short  # the pairs that never cross stay in the report
    assert "details in the report: out/compare.html" in lines[-1]
    for name in ("quadratic", "lin_a", "lin_e"):
        assert sum(line.startswith(f"│ {name} ") for line in lines) == 2  # one row per series and mode


def test_summary_shows_claims_verdicts_and_the_largest_size(six):
    text = _shown(summary_table(six))
    row = next(line for line in text.splitlines() if line.startswith("│ quadratic ") and "forward" in line)
    assert "2.00 (2) pass" in row and "1.00 (1) pass" in row  # FLOPs and state exponents against their claims
    assert "419M" in row and "20 KiB" in row  # FLOPs and state at seq_len = 2048: 100·2048², 10·2048 bytes
    assert "@2048" in text


def test_failed_inconclusive_and_uncertain_verdicts_look_different_from_pass(six):
    session = copy.deepcopy(six)
    by = {(f["mechanism"], f["mode"], f["metric"]): f for f in session.fits}
    by["lin_a", "forward", "flops"].update(verdict="fail")
    by["lin_b", "forward", "flops"].update(verdict="inconclusive", verdict_reason="sizes up to 8192 would decide")
    by["lin_c", "forward", "time"].update(claimed=1.0, verdict="pass", uncertain=True, noisy_points=2)
    text = _shown(*summary_screen(session, "r.html"))
    rows = {line.split()[1]: line for line in text.splitlines() if line.startswith("│ lin_") and "forward" in line}
    assert "FAIL" in rows["lin_a"] and "pass" not in rows["lin_a"].split("│")[3]
    assert "inconclusive" in rows["lin_b"].split("│")[3]
    assert f"noisy (1) {NOISY_MARK}" in rows["lin_c"].split("│")[4]
    assert "1 FAIL" in text and "1 inconclusive" in text and "1 time verdict(s) uncertain" in text
    assert "lin_b forward flops: sizes up to 8192 would decide" in text
    colored = _shown(summary_table(session), color=True)
    styles = {word: colored.split(word)[0].rsplit("\x1b[", 1)[-1] for word in ("FAIL", "inconclusive", f"noisy (1) {NOISY_MARK}")}
    assert len(set(styles.values())) == 3  # three different styles: red, yellow, dim


def test_only_crossovers_in_range_and_certain_are_stated(six):
    session = six
    lines = [line.plain for line in crossover_lines(session)]
    assert lines[0] == "14 crossovers in range:" and len(lines) == 5  # one line per mode and metric
    assert "  forward FLOPs: cheaper than quadratic above seq_len ≈ lin_a 600, lin_b 1200, lin_c 1800" in lines
    assert not any("cheaper than lin_" in line for line in lines)  # the linear ones never cross
    rows = [{**r, "time_iqr_s": r["time_s"]} if r["mechanism"] == "lin_a" else r for r in _six_mechanisms()]
    noisy = Session(records=[], fits=[], crossovers=crossovers(records.to_frame(rows)), complexity=[])
    stated = [line.plain for line in crossover_lines(noisy)]
    assert not any("time" in line and "lin_a" in line for line in stated[1:-1])
    assert stated[-1] == f"  2 more rest on noisy timings ({NOISY_MARK} uncertain): not stated as findings"


def test_crossover_lines_are_capped(six):
    session = copy.deepcopy(six)
    session.crossovers = [{**session.crossovers[0], "metric": f"m{i}", "at": 300.0, "uncertain": False} for i in range(30)]
    lines = [line.plain for line in crossover_lines(session, limit=4)]
    assert len(lines) == 6 and "26 more lines of crossovers in the report" in lines[-1]


def test_compare_tables_option_refuses_an_unknown_value_before_measuring(tmp_path):
    result = runner.invoke(app, ["compare", "--tables", "some", "-o", str(tmp_path / "r.html")])
    assert result.exit_code == 2 and "--tables 'some' is not a choice; accepted: summary, all" in result.output
    assert not list(tmp_path.iterdir())


# ---- piped output ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("columns, expected", [(None, 160), ("100", 100)])
def test_piped_consoles_are_not_wrapped_at_80_columns(columns, expected):
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"} | ({"COLUMNS": columns} if columns else {})
    env["PYTHONPATH"] = str(ROOT)
    code = "from effprof.cli.output import out, err; print(out.width, err.width)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, check=True)
    assert done.stdout.split() == [str(expected), str(expected)]


def test_a_long_warning_stays_on_one_line_when_piped():
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"} | {"PYTHONPATH": str(ROOT)}
    code = ("from effprof.cli.output import sweep_warnings, err, plain\n"
            "records = [{'status': 'ok', 'time_s': 1.0, 'time_iqr_s': 0.5, 'time_noisy': True}] * 3\n"
            "[err.print(plain(line), soft_wrap=True) for line in sweep_warnings(records)]")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, check=True)
    (line,) = done.stderr.splitlines()
    assert line.startswith("warning: 3 of 3 points have noisy timing") and line.endswith("flagged time_noisy")


# ---- terminal safety -------------------------------------------------------------------------------------


def _hostile_records() -> list[dict]:
    """A crafted results file: hostile strings in the mechanism, a variant key's value, the error and config."""
    rows = []
    for k, bad in enumerate(HOSTILE_STRINGS):
        for n in (64, 128, 256):
            rows.append(_point(f"mech{k}{bad}", "forward", n, 10.0 * n, 1e-6 * n, impl=f"impl{bad}", activation=bad))
        rows.append({**_point(f"mech{k}{bad}", "forward", 512, 0.0, 0.0, impl=f"impl{bad}"), "status": "error",
                     "error": f"failed at {bad}", "cpu_model": bad, "hostname": bad})
    return rows


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_every_console_table_of_hostile_records_is_clean_text():
    session = analyse(_hostile_records())
    text = _shown(*session_tables(session), *summary_lines(session), *summary_screen(session, "r[/x].html"), width=400)
    assert not _control_characters(text)
    assert "[/path]" in text and "[bold]b[/bold]" in text  # shown as text, not taken as markup
    assert "r[/x].html" in text


def test_fit_and_report_of_a_crafted_results_file_print_no_escape_sequence(tmp_path):
    folder = tmp_path / "r["  # file names are data too: r[/path]... once joined
    folder.mkdir()
    results = _write(folder / "path]\x1b]0;t\x07.jsonl", _hostile_records())
    fit = runner.invoke(app, ["fit", str(results)])
    assert fit.exit_code == 0, fit.output
    assert "[/path]" in fit.output and "mech0" in fit.output and not _control_characters(fit.output)
    report = runner.invoke(app, ["report", str(results), "-o", str(folder / "path]\x1b[2J.html")])
    assert report.exit_code == 0, report.output
    assert "report: " in report.output and "r[/path]" in report.output and not _control_characters(report.output)


def test_a_sweep_whose_points_fail_with_hostile_errors_measures_every_point(tmp_path):
    results = tmp_path / "h.jsonl"
    result = runner.invoke(app, ["--plugin", "tests.plugins.hostile:hostile_conv", "sweep", "hostile_conv",
                                 "--vary", "seq_len=16,32,64,128", "-o", str(results), "--max-time", "0.01"])
    assert result.exit_code == 0, result.output
    assert "MarkupError" not in result.output and not _control_characters(result.output)
    assert "2 of 4 points failed (2 error)" in result.output
    saved = records.read(results)
    assert [r["status"] for r in saved] == ["ok", "ok", "error", "error"]
    assert all(HOSTILE in r["error"] for r in saved[2:])  # the record keeps the error as it was: nothing lost


def test_profile_of_a_failing_point_prints_its_hostile_error_as_text():
    result = runner.invoke(app, ["--plugin", "tests.plugins.hostile:hostile_conv", "profile", "hostile_conv", "--seq-len", "64",
                                 "--max-time", "0.01"])
    assert result.exit_code == 1 and "[/path] [bold]x[/bold]" in result.output
    assert not _control_characters(result.output)


@pytest.mark.parametrize("command", [["list"], ["explain", "hostile_conv"]])
def test_plugin_specs_are_listed_and_explained_as_text(command):
    result = runner.invoke(app, ["--plugin", "tests.plugins.hostile:hostile_conv", *command])
    assert result.exit_code == 0, result.output
    assert "hostile_conv" in result.output and "[/path]" in result.output and not _control_characters(result.output)


def test_a_bad_input_error_naming_hostile_data_is_one_clean_line(tmp_path):
    result = runner.invoke(app, ["fit", str(tmp_path / "missing\x1b[2J[/x].jsonl")])
    assert result.exit_code == 2 and not _control_characters(result.output)
    assert len(result.output.strip().splitlines()) == 1


def test_check_output_and_github_annotations_cannot_be_injected():
    from effprof.check import Check, CheckResult, github_annotations
    from effprof.render.escape import plain

    check = Check(mechanism="m\n::error ::pwned", axis="seq_len", values=[1, 2, 3], metric="flops", exponent=1.0, tolerance=0.1,
                  name=f"name {HOSTILE}\r\n::warning::x", file="a::b,c\n.toml", line=3)
    result = CheckResult(check=check, verdict="fail", fit=None, error=f"boom {HOSTILE}")
    (line,) = github_annotations([result])
    assert line.startswith("::error title=effprof check,file=a%3A%3Ab%2Cc%0A.toml,line=3::")
    assert "\n" not in line and "\r" not in line  # so no `::warning` or `::error` line can start inside it
    assert "%0D%0A::warning::x" in line
    shown = _shown(plain(line), plain(f"FAILED {check.source}: {result.message}"), width=1000)
    assert not _control_characters(shown) and len(shown.splitlines()) == 2

    from effprof.cli.check import _checks_table

    table = _shown(_checks_table([result]), width=400)
    assert "[/path]" in table and not _control_characters(table)


def test_progress_labels_are_markup_safe_and_clean():
    from rich.progress import Progress, TextColumn

    from effprof.render.console import point_label

    label = point_label({"mechanism": f"m{HOSTILE}", "mode": "forward", "seq_len": 64, "impl": "[/path]"})
    console = Console(file=io.StringIO(), width=300, color_system=None)
    with Progress(TextColumn("[progress.description]{task.description}"), console=console) as bar:
        bar.add_task(label, total=1)
    text = console.file.getvalue()
    assert "impl=[/path]" in text and not _control_characters(text)


def test_session_without_fits_still_has_a_summary():
    session = Session(records=[_point("only", "forward", 64, 1.0, 1.0)], fits=[], crossovers=[], complexity=[], axis=None)
    text = _shown(*summary_screen(session, "r.html"))
    assert "│ only" in text and "0 crossovers in range" in text


def test_validate_prints_a_plugins_results_as_text():
    result = runner.invoke(app, ["validate", "tests.plugins.hostile:hostile_conv"])
    assert "hostile_conv:" in result.output and "pass" in result.output and not _control_characters(result.output)


def test_a_usage_error_echoing_a_typed_value_is_clean():
    result = runner.invoke(app, ["compare", "--max-time", "\x1b]0;pwned\x07x"])
    assert result.exit_code == 2 and "--max-time" in result.output and not _control_characters(result.output)


def test_ratios_to_a_baseline_series_and_changes_against_a_baseline_file(six):
    text = _shown(summary_table(six, "quadratic"))
    rows = {line.split()[1] + line.split()[3]: line for line in text.splitlines() if line.startswith("│ ")}
    assert "(0.293×)" in rows["lin_aforward"]  # 123M / 419M FLOPs at 2048
    assert "×)" not in rows["quadraticforward"]  # the baseline itself carries no ratio
    from effprof.render.console import baseline_lines

    diff = [{"mechanism": "m\x1b[2J", "mode": "forward", "point": "seq_len=64", "metric": "time_s", "old": 1.0, "new": 2.0, "ratio": 2.0,
             "noise_band": 0.05, "change": "worse", "noisy": False},
            {"mechanism": "m", "mode": "forward", "point": "seq_len=64", "metric": "flops_counted", "old": 1.0, "new": 1.0, "ratio": 1.0,
             "noise_band": 0.005, "change": "same", "noisy": False}]
    lines = [t.plain for t in baseline_lines(Session(records=[], fits=[], crossovers=[], complexity=[], baseline=diff))]
    assert lines == ["against the baseline: 1 worse, 0 better, 1 within noise", "  worse: m forward seq_len=64 time_s ×2.00"]
    assert baseline_lines(Session(records=[], fits=[], crossovers=[], complexity=[])) == []
