"""The synthetic record generator: schema-valid records whose laws the fit recovers; bad sizes refused."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

import effprof
from effprof.analyse.fit import fit_frame
from effprof.store import synthetic
from effprof.store.records import read, to_frame

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "synthetic.py"


def _script():
    """scripts/synthetic.py, the command line of effprof.store.synthetic (the library has no argparse main)."""
    spec = importlib.util.spec_from_file_location("synthetic_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Main:
    @staticmethod
    def main(argv):
        return _script().main(argv)


cli = _Main()


def test_written_records_read_back_and_fit_their_laws(tmp_path):
    path = tmp_path / "s.jsonl"
    assert cli.main(["-o", str(path), "--series", "3", "--sizes", "5", "--repeats", "2"]) == 0
    records = read(path)
    assert len(records) == 3 * 5 * 2 and all(len(r["time_samples_s"]) == synthetic.SAMPLES for r in records)
    fits = fit_frame(to_frame(records))
    claimed = fits[fits.verdict != "no-claim"]
    assert len(claimed) == 3 * 2 and set(claimed.verdict) == {"pass"}  # flops ∝ n² (+ n), state constant


@pytest.mark.parametrize("flag", ["--series", "--sizes", "--repeats"])
def test_sizes_below_one_are_refused(tmp_path, flag, capsys):
    assert cli.main(["-o", str(tmp_path / "s.jsonl"), flag, "0"]) == 2
    assert capsys.readouterr().err.strip() == f"error: {flag} must be at least 1; got 0"


@pytest.mark.parametrize("args, message", [
    (["--noise", "-1"], "--noise -1.0 is not a log-normal σ; accepted: a number from 0 to 2"),
    (["--noise", "nan"], "--noise nan is not a log-normal σ"),
    (["--noise", "inf"], "--noise inf is not a log-normal σ"),
    (["--sizes", "60"], "--sizes 60 reaches seq_len="),
    (["--sizes", "18"], "accepted: 1 to 17"),
    (["--seed", "-1"], "--seed must be a whole number >= 0; got -1"),
])
def test_arguments_that_would_give_unreadable_records_are_refused_in_one_line(tmp_path, args, message, capsys):
    """--noise -1 was a traceback; --noise nan and --sizes 60 wrote records that fit then skipped (seq_len overflowed)."""
    path = tmp_path / "s.jsonl"
    assert cli.main(["-o", str(path), *args]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines
    assert not path.exists()  # refused before the file is opened


def test_the_largest_accepted_size_is_readable(tmp_path):
    path = tmp_path / "s.jsonl"
    assert cli.main(["-o", str(path), "--sizes", "17", "--noise", "2"]) == 0
    assert len(read(path)) == 17


def test_an_unwritable_output_is_one_line(tmp_path, capsys):
    assert cli.main(["-o", str(tmp_path), "--sizes", "2"]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_the_python_generator_checks_its_arguments_when_called():
    with pytest.raises(synthetic.SyntheticError, match="--noise"):
        synthetic.records(noise=-0.5)  # at the call, not at the first record


def test_the_library_has_no_command_line_mains():
    """Commands live in effprof.cli and scripts/; a module of the package does not parse its own argv."""
    package = Path(effprof.__file__).parent
    offenders = [str(p.relative_to(package)) for p in package.rglob("*.py")
                 if "import argparse" in p.read_text(encoding="utf-8") or "__name__ == \"__main__\"" in p.read_text(encoding="utf-8")]
    assert set(offenders) <= {"__main__.py"}, offenders  # python -m effprof: the CLI's entry point
