"""The synthetic record generator: schema-valid records whose laws the fit recovers; bad sizes refused."""

from __future__ import annotations

import pytest

from effprof import synthetic
from effprof.fit import fit_frame
from effprof.records import read, to_frame


def test_written_records_read_back_and_fit_their_laws(tmp_path):
    path = tmp_path / "s.jsonl"
    assert synthetic.main(["-o", str(path), "--series", "3", "--sizes", "5", "--repeats", "2"]) == 0
    records = read(path)
    assert len(records) == 3 * 5 * 2 and all(len(r["time_samples_s"]) == synthetic.SAMPLES for r in records)
    fits = fit_frame(to_frame(records))
    claimed = fits[fits.verdict != "no-claim"]
    assert len(claimed) == 3 * 2 and set(claimed.verdict) == {"pass"}  # flops ∝ n² (+ n), state constant


@pytest.mark.parametrize("flag", ["--series", "--sizes", "--repeats"])
def test_sizes_below_one_are_refused(tmp_path, flag, capsys):
    assert synthetic.main(["-o", str(tmp_path / "s.jsonl"), flag, "0"]) == 2
    assert capsys.readouterr().err.strip() == f"error: {flag} must be at least 1; got 0"
