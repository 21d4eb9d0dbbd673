"""Renderers only render: one interface, render(session, options), a Session and nothing else, no fitting inside."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from effprof.analyse.session import Session, analyse
from effprof.render import FORMATS, RenderOptions, render
from effprof.store import synthetic
from effprof.store.records import to_frame


def _records() -> list[dict]:
    """Synthetic records with a per-submodule breakdown: attention core ∝ n², projections ∝ n."""
    records = list(synthetic.records(series=2, sizes=4, noise=0.0))
    for r in records:
        n = r["seq_len"]
        r["breakdown"] = {"": {"type": "Layer", "flops": 2.0 * n * n + 8.0 * n, "time_s": 1e-9 * n * n, "peak_bytes": 16 * n},
                          "qkv": {"type": "Linear", "flops": 8.0 * n, "time_s": 1e-9 * n, "peak_bytes": 8 * n}}
    return records


@pytest.fixture(scope="module")
def session() -> Session:
    return analyse(_records())


def test_module_fits_are_in_the_session(session):
    by_module = {(f["mechanism"], f["module"], f["metric"]): f for f in session.module_fits}
    assert by_module[("synthetic_00000", "qkv", "flops")]["exponent"] == pytest.approx(1.0, abs=1e-6)
    assert by_module[("synthetic_00000", "(rest)", "flops")]["exponent"] == pytest.approx(2.0, abs=1e-6)
    assert by_module[("synthetic_00000", "(whole)", "flops")]["leading_exponent"] == pytest.approx(2.0, abs=0.05)


def test_saved_sessions_keep_module_fits_and_points(session, tmp_path):
    loaded = Session.load(session.save(tmp_path / "s.session.json"))
    assert loaded.module_fits == session.module_fits
    assert loaded.points.equals(session.points) and session.points["n"].tolist() == [1] * len(session.records)


def test_no_renderer_fits_or_aggregates(session, tmp_path, monkeypatch):
    """Every format renders from the Session alone: the fitting and aggregating functions are made to fail first."""
    session.points  # noqa: B018  (the Session's own, built once: what analyse provides)

    def refuse(*args, **kwargs):
        raise AssertionError("a renderer fitted or aggregated")

    for target in ("effprof.analyse.fit.fit_frame", "effprof.analyse.fit_breakdown.fit_breakdown", "effprof.analyse.fit.fit_series",
                   "effprof.analyse.session.analyse", "effprof.analyse.session.mark_noisy_fits", "effprof.analyse.points.aggregate"):
        monkeypatch.setattr(target, refuse)
    outputs = {}
    for fmt in ("console", "html", "latex", "csv"):
        outputs[fmt] = render(session, RenderOptions(fmt, report="r.html", path=tmp_path / "r.csv"))
    assert "qkv" in outputs["html"] and "Per-module scaling" in outputs["html"]
    written = [Path(p) for p in outputs["csv"]]
    assert [p.name for p in written] == ["r.csv", "r_fits.csv", "r_crossovers.csv", "r_module_fits.csv"]
    module_rows = pd.read_csv(written[-1])
    assert set(module_rows["module"]) == {"(whole)", "qkv", "(rest)"}
    assert outputs["console"] and "\\begin{table" in outputs["latex"] and "\\toprule" in outputs["latex"]
    assert "Per-module scaling" in outputs["latex"] and "qkv" in outputs["latex"]  # the module fits reach LaTeX too


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("wrong", [pd.DataFrame(), [], "results.jsonl"])
def test_renderers_refuse_anything_but_a_session(fmt, wrong, tmp_path):
    with pytest.raises(TypeError, match="takes a Session"):
        render(wrong, RenderOptions(fmt, path=tmp_path / "x"))


def test_bad_options_are_refused(session):
    with pytest.raises(ValueError, match="'pdf' is not one of console, html"):
        render(session, RenderOptions("pdf"))
    with pytest.raises(ValueError, match="writes files"):
        render(session, RenderOptions("csv"))


def test_sweep_tables_come_from_a_session(tmp_path):
    """`effprof sweep` renders its tables from a Session (it analysed a raw frame before)."""
    from typer.testing import CliRunner

    from effprof.cli import app

    out = tmp_path / "s.jsonl"
    result = CliRunner().invoke(app, ["sweep", "linear_attention", "--vary", "seq_len=16,32", "-p", "d_model=8", "-p", "n_heads=1",
                                      "--max-time", "0.01", "-o", str(out)])
    assert result.exit_code == 0, result.output
    frame = to_frame([r for r in map(__import__("json").loads, out.read_text().splitlines())])
    assert len(frame) == 2 and "seq_len=32" in result.stdout
