"""The HTML report: self-contained, plots present, user strings escaped; records store round trip."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from effprof import records
from effprof.fit import fit_frame
from effprof.analysis import analyse
from effprof.render.html import render


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

    frame["breakdown"] = [tree(n, 2.0 if impl == "a" else 1.0) for n, impl in zip(frame["seq_len"], frame["impl"])]
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
