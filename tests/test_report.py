"""The HTML report: self-contained, plots present, user strings escaped; records store round trip."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from effprof.analyse.session import analyse
from effprof.render.html import render
from effprof.store import records


def _frame(label: str = "m") -> pd.DataFrame:
    rows = []
    for impl, p in (("a", 2.0), ("b", 1.0)):
        for n in (64, 128, 256, 512):
            rows.append({"mechanism": label, "family": "f", "mode": "forward", "impl": impl, "seq_len": n, "status": "ok",
                         "flops_counted": float(n**p), "flops_analytic": float(n**p), "time_s": 1e-6 * n**p, "time_iqr_s": 1e-8,
                         "peak_bytes": 4.0 * n, "state_bytes": 8.0 * n, "params": 100, "claims": [["flops", "seq_len", p, 0.0]],
                         "torch": "2.x", "device_name": "cpu", "threads": 2, "effprof": "0.1.0", "git_sha": "abc", "timestamp": "t"})
    return pd.DataFrame(rows)


def _breakdown_frame() -> pd.DataFrame:
    """_frame() measured with a per-module breakdown (a layer = projections growing as n, a core as n^p) on a named CPU."""
    frame = _frame()

    def tree(n: int, p: float) -> dict:
        projections, core = 4.0 * n * 64 * 64, 2.0 * n**p * 64
        return {"": {"type": "Layer", "calls": 1, "flops": projections + core + 10 * n, "time_s": 1e-9 * (projections + core), "peak_bytes": 100 * n},
                "proj": {"type": "Linear", "calls": 2, "flops": projections, "time_s": 1e-9 * projections, "peak_bytes": 50 * n},
                "core": {"type": "Attention", "calls": 1, "flops": core, "time_s": 1e-9 * core, "peak_bytes": 40 * n}}

    frame["breakdown"] = [tree(n, 2.0 if impl == "a" else 1.0) for n, impl in zip(frame["seq_len"], frame["impl"], strict=False)]
    frame["cpu_model"], frame["cpu_count"], frame["hostname"] = "AMD EPYC 7763 64-Core Processor", 2, "bench-1"
    frame["load_avg_1m"] = [0.5 + 0.25 * i for i in range(len(frame))]  # busy (above 2 cores) for the last two
    return frame


def test_report_is_self_contained_with_plots():
    frame = _frame()
    html = render(analyse(frame, command="effprof compare m"))
    assert "<script src" not in html.lower()  # plotly.js is inlined, nothing loads from the network
    from plotly.offline import get_plotlyjs

    bundle = get_plotlyjs()  # inlined once; it mentions map-tile URLs that these plots never load
    assert html.count(bundle) == 1
    ours = html.replace(bundle, "")
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", ours)
    assert html.count("Plotly.newPlot") >= 4  # flops, time, peak memory, state per mode
    assert "effprof compare m" in html and "pass" in html
    assert len(re.findall(r"function\(\)\{var|plotly\.js v\d", html)) >= 1


def test_user_strings_are_escaped():
    evil = '"><img src=x onerror=alert(1)></script><script>alert(2)</script>'
    frame = _frame(label=evil)
    html = render(analyse(frame, command=f"effprof compare {evil}"))
    assert "<img src=x" not in html and "<script>alert(2)" not in html


def test_records_round_trip_and_corrupt_lines(tmp_path):
    path = tmp_path / "r.jsonl"
    for record in _frame().to_dict("records"):
        records.append(path, record)
    with path.open("a") as f:
        f.write("{not json\n")
        f.write(json.dumps({"foo": 1}) + "\n")
    with pytest.warns(UserWarning) as warned:
        got = records.read(path)
    assert [str(w.message).split("r.jsonl:")[1][:2] for w in warned] == ["9:", "10"]  # both bad lines, named
    assert len(got) == 8
    assert records.to_frame(got)["seq_len"].tolist() == [64, 128, 256, 512] * 2


def test_a_record_of_another_schema_is_skipped_and_the_rest_read(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps({"mechanism": "m", "mode": "forward", "schema": 99}) + "\n"
                    + json.dumps({"mechanism": "m", "mode": "forward", "schema": 1}) + "\n")
    with pytest.warns(UserWarning, match="r.jsonl:1: .*schema 99"):
        assert len(records.read(path)) == 1


EVIL = ['<script>alert(1)</script>', '"><img src=x onerror=alert(2)>', "</script><script>alert(3)</script>"]


def test_every_user_string_path_is_escaped():
    """Mechanism / plugin names, config values (variants), error messages of failed points, baseline points,
    MoE diagnostics and the command line: none reaches the page raw."""

    frames = []
    for i, evil in enumerate(EVIL):
        f = _frame(label=f"plugin{i}{evil}")
        f["impl"] = f["impl"] + evil  # a config value, shown in variant labels, hover and the records table
        f["family"] = "moe"
        f["aux_loss"], f["z_loss"], f["dropped_fraction"], f["load_cv"] = 1.0, 0.1, 0.0, 0.2
        f["expert_load"] = [[3, 4, 5]] * len(f)
        f.loc[0, "status"] = "error"
        f.loc[0, "error"] = f"RuntimeError: {evil}"
        frames.append(f)
    frame = pd.concat(frames, ignore_index=True)
    html = render(analyse(frame, frame.copy(), command="effprof compare " + " ".join(EVIL)))
    for raw in ("<script>alert", "<img src=x", "</script><script>"):
        assert raw not in html, raw
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # shown, escaped


def test_hybrid_layer_breakdown_table():

    frame = _frame(label="jamba")
    frame["family"] = "hybrid"
    frame["analytic_flops_attention"] = frame["seq_len"].astype(float) ** 2
    frame["analytic_flops_ssm"] = 1000.0 * frame["seq_len"]
    frame["state_bytes_attention_kv"] = 64.0 * frame["seq_len"]
    frame["time_s_ssm"] = 1e-3
    html = render(analyse(frame))
    assert "Cost by layer kind" in html
    shares = [int(x) for x in re.findall(r"\((\d+)%\)", html.split("Cost by layer kind")[1].split("</table>")[0])]
    assert shares[0] < shares[-2]  # the attention share grows with seq_len (64 → 512)


def test_summary_comes_first_with_inconclusive_verdicts_and_their_reasons():
    """Verdicts, then the crossovers found, then complexity — before any figure; an inconclusive verdict is shown as
    such (never as pass) with its reason, and an uncertain one is marked and not counted."""
    session = analyse(_frame(), command="effprof compare m")
    claimed = [f for f in session.fits if f["verdict"] == "pass"]
    claimed[0].update(verdict="inconclusive", verdict_reason="the interval [1.2, 2.6] spans both 1 and 2; sizes up to 4096 would decide")
    claimed[1].update(uncertain=True, noisy_points=2)
    page = render(session)
    order = [page.index(marker) for marker in ('id="verdicts"', 'id="found-crossovers"', 'id="complexity"', 'id="figures"', 'id="claims"',
                                                'id="records"', 'id="environment"')]
    assert order == sorted(order)
    summary = page[page.index('id="verdicts"'):page.index('id="figures"')]
    assert "0 of 1 claims hold" in summary and "1 inconclusive" in summary and "1 uncertain" in summary
    assert 'class="l inconclusive"' in summary and "sizes up to 4096 would decide" in summary
    assert "pass † uncertain" in summary and "uncertain: 2 noisy point(s)" in summary
    assert len(re.findall(r"<table class=\"sortable\"", page)) >= 4  # verdicts, crossovers, complexity, fits, crossovers (all)


def test_machine_line_names_the_cpu_cores_and_load():
    from tests.test_report import _breakdown_frame

    page = render(analyse(_breakdown_frame(), command="effprof compare m"))
    top = page[page.index('id="machine"'):page.index('id="summary"')]
    assert "AMD EPYC 7763 64-Core Processor" in top and "(2 cores)" in top and "min 0.50, median 1.38, max 2.25" in top
    environment = page[page.index('id="environment"'):]
    assert "bench-1" in environment and "effprof compare m" in environment and "2.x" in environment


def test_without_cpu_model_the_device_name_is_shown():
    page = render(analyse(_frame()))
    assert "Measured on <strong>cpu</strong>" in page  # _frame()'s device_name; records before cpu_model name the architecture


def test_where_the_cost_goes_shows_share_figures_and_module_fits():
    from tests.test_report import _breakdown_frame

    page = render(analyse(_breakdown_frame()))
    cost = page[page.index('id="cost"'):page.index('id="claims"')]
    assert cost.count("Plotly.newPlot") == 2  # FLOPs and time shares
    fits = cost[cost.index('id="module-fits"'):]
    assert re.search(r"core</td><td class=\"l\">Attention</td><td class=\"l\">flops</td>\s*<td>2\.00</td>", fits)
    assert re.search(r"proj</td><td class=\"l\">Linear</td><td class=\"l\">flops</td>\s*<td>1\.00</td>", fits)
    assert 'id="cost"' not in render(analyse(_frame()))  # no breakdown, no section


@pytest.mark.parametrize("mode", ["inline", "cdn", "directory"])
def test_plotlyjs_is_loaded_once(tmp_path, mode):
    """One report, one copy of plotly.js: inlined, from the pinned CDN with its integrity hash, or beside the page."""
    from plotly.offline import get_plotlyjs, get_plotlyjs_version

    from effprof.render.html import write

    frame = _frame()
    frame["family"] = "sparse"  # pattern panels must not bring their own copy either
    page = render(analyse(frame, patterns=[{"name": "p", "n": 4, "rows": [0, 1], "cols": [0, 1], "pairs": 2, "density": 0.5}]), mode)
    bundle = get_plotlyjs()
    assert page.count(bundle) == (mode == "inline")
    assert page.count("<script src") + page.count('<script charset="utf-8" src') == (mode != "inline")
    if mode == "cdn":
        assert f"https://cdn.plot.ly/plotly-{get_plotlyjs_version()}.min.js" in page and 'integrity="sha256-' in page
    if mode == "directory":
        path = write(analyse(frame), tmp_path / "a" / "report.html", mode)
        assert (tmp_path / "a" / "plotly.min.js").read_text(encoding="utf-8") == bundle
        assert 'src="plotly.min.js"' in Path(path).read_text(encoding="utf-8")
        before = (tmp_path / "a" / "plotly.min.js").stat().st_mtime_ns
        write(analyse(frame), tmp_path / "a" / "second.html", mode)
        assert (tmp_path / "a" / "plotly.min.js").stat().st_mtime_ns == before  # written once per folder


def test_an_unknown_plotlyjs_mode_is_refused():
    with pytest.raises(ValueError, match="'offline' is not one of inline, cdn, directory"):
        render(analyse(_frame()), "offline")


def test_records_json_cannot_close_its_script():
    evil = "</script><script>alert(1)</script><!--"
    frame = _frame(label=evil)
    frame.loc[0, "status"], frame.loc[0, "error"] = "error", evil
    page = render(analyse(frame))
    data = page[page.index('id="records-data">'):]
    data = data[:data.index("</script>")]
    assert "<" not in data.split(">", 1)[1] and "\\u003c/script\\u003e" in data
    assert json.loads(data.split(">", 1)[1])["columns"][0]["values"][0] == evil  # the text itself survives


def test_bad_plotlyjs_on_the_command_line_is_one_line_and_exit_2(tmp_path):
    from typer.testing import CliRunner

    from effprof.cli import app

    results = tmp_path / "r.jsonl"
    for record in _frame().to_dict("records"):
        records.append(results, record)
    done = CliRunner().invoke(app, ["report", str(results), "-o", str(tmp_path / "r.html"), "--plotlyjs", "offline"])
    assert done.exit_code == 2 and "--plotlyjs 'offline' is not accepted; accepted: inline, cdn, directory" in done.output
    assert not (tmp_path / "r.html").exists()
    done = CliRunner().invoke(app, ["report", str(results), "-o", str(tmp_path / "r.html"), "--plotlyjs", "directory"])
    assert done.exit_code == 0, done.output
    assert (tmp_path / "plotly.min.js").exists()


def test_verdict_matrix_shows_the_exponent_the_verdict_judged():
    """The summary shows the dominant term's exponent (what the one rule judges), never the raw slope beside it."""
    from effprof.analyse.session import analyse
    from effprof.render.html import render

    session = analyse(_frame())
    claimed = next(f for f in session.fits if f.get("verdict") not in (None, "no-claim"))
    claimed.update(exponent=1.234, ci_low=1.2, ci_high=1.26, leading_exponent=1.987, leading_ci_low=1.97, leading_ci_high=1.99,
                   claimed=2.0, verdict="pass")
    summary = render(session).split('id="summary"')[1].split("</section>")[0]
    assert "1.99" in summary and "1.23" not in summary
