"""The CLI and the Python API produce the same fits, noise marking included (issue 22): `effprof fit --json`,
`effprof.fit(records)` and the Session's fits (what report, CSV and LaTeX render) are analysis.scaling_fits."""

from __future__ import annotations

import json

import pandas as pd
from typer.testing import CliRunner

import effprof
from effprof.analyse.session import analyse, scaling_fits
from effprof.cli import app
from effprof.store.records import json_ready, write_all


def _records() -> list[dict]:
    """Two variants of one mechanism over four sizes: time ∝ n with one noisy point (impl=a, n = 128), FLOPs ∝ n²."""
    rows = []
    for impl in ("a", "b"):
        for n in (64, 128, 256, 512):
            time = 1e-6 * n * (1.03 if n == 256 else 1.0)
            rows.append({"schema": 2, "mechanism": "m", "family": "attention", "mode": "forward", "status": "ok", "impl": impl,
                         "seq_len": n, "d_model": 16, "batch": 1, "time_s": time,
                         "time_iqr_s": time * (0.4 if (impl, n) == ("a", 128) else 0.01), "time_blocks": 5,
                         "flops_counted": 2.0 * n * n, "claims": [["time", "seq_len", 1.0, 0.0], ["flops", "seq_len", 2.0, 0.0]]})
    return rows


def test_cli_python_api_and_session_give_the_same_fits(tmp_path):
    records = _records()
    path = tmp_path / "r.jsonl"
    write_all(path, records)
    result = CliRunner().invoke(app, ["fit", str(path), "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    cli = json.loads(result.stdout)
    api = effprof.fit(records)
    # the CLI writes with pandas' encoder (15 significant digits): the API's frame through the same encoder is equal
    assert cli == json.loads(api.to_json(orient="records", double_precision=15))
    assert json_ready(api.to_dict("records")) == analyse(records).fits
    noisy = {(f["variant"], f["metric"]): (f["noisy_points"], f["uncertain"]) for f in cli}
    assert noisy == {("impl=a", "time"): (1, True), ("impl=b", "time"): (0, False),
                     ("impl=a", "flops"): (0, False), ("impl=b", "flops"): (0, False)}


def test_the_api_marks_noise_on_a_frame_too():
    frame = pd.DataFrame(_records())
    fits = effprof.fit(frame)
    assert {"noisy_points", "uncertain"} <= set(fits.columns)
    assert fits.equals(scaling_fits(frame))
