"""Fault injection: cut-off and crafted results files, full disks, unusable outputs, killed workers and
parents, oversized grids. Nothing measured may be lost, nothing may hang, nothing may print a traceback."""

from __future__ import annotations

import json
import os
import resource
import signal
import stat
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from effprof.cli import app
from effprof.cli.output import sweep_warnings
from effprof.config import ConfigError
from effprof.measure.harness import Options
from effprof.measure.isolate import IsolatedRunner, crash_status
from effprof.runner import MAX_POINTS, pending, plan, run_points
from effprof.store.records import append, read, validate_record, write_all

runner = CliRunner()
QUICK = Options(max_time_s=0.02, fvcore=False, roofline=False)
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def measured() -> list[dict]:
    """Three real records (softmax attention at three sizes): the material the crafted files are made from."""
    return run_points(plan(["softmax_attention"], {"seq_len": [16, 32, 64]}, ["forward"], {"d_model": 16}), QUICK)


def _lines(records: list[dict]) -> list[str]:
    return [json.dumps(r) for r in records]


def _read_quietly(path: Path) -> tuple[list[dict], list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        records = read(path)
    return records, [str(w.message) for w in caught]


# --- a cut-off last line ---------------------------------------------------------------------------------

def test_an_append_after_a_cut_at_every_byte_of_the_last_line_loses_nothing_and_glues_nothing(tmp_path, measured):
    last_record = {key: measured[2][key] for key in ("schema", "mechanism", "mode", "seq_len", "d_model", "status", "time_s")}
    whole, last = _lines(measured[:2]), json.dumps(last_record).encode()
    measured = [*measured[:2], last_record]
    new = dict(measured[0], seed=99)
    for cut in range(len(last) + 1):
        path = tmp_path / f"cut{cut}.jsonl"
        path.write_bytes(("\n".join(whole) + "\n").encode() + last[:cut])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            append(path, new)
        records, problems = _read_quietly(path)
        if cut == len(last):  # the last line was whole, only its newline was missing
            assert records == [*measured, new] and not caught and not problems
            continue
        assert records == [*measured[:2], new] and not problems, cut  # every whole record, the new one unglued
        side = path.with_name(path.name + ".corrupt")
        if cut:
            assert side.read_bytes() == last[:cut] + b"\n" and "cut off" in str(caught[0].message)
        else:
            assert not side.exists() and not caught


def test_resume_after_a_cut_measures_the_lost_point_again(tmp_path, measured):
    path = tmp_path / "r.jsonl"
    path.write_text("\n".join(_lines(measured[:2])) + "\n" + _lines(measured[2:])[0][:40])
    result = runner.invoke(app, ["sweep", "softmax_attention", "--vary", "seq_len=16,32,64", "--param", "d_model=16",
                                 "-o", str(path), "--resume", "--max-time", "0.02"])
    assert result.exit_code == 0, result.output
    assert "2 of 3 points already" in result.output and "cut off" in result.output
    assert [r["seq_len"] for r in read(path)] == [16, 32, 64]
    assert path.with_name("r.jsonl.corrupt").exists()


# --- reading damaged and crafted files -------------------------------------------------------------------

def test_each_bad_line_is_skipped_with_its_number_and_the_rest_is_read(tmp_path, measured):
    good = _lines(measured)
    bad = [
        "[" * 100_000,  # RecursionError in the JSON parser
        good[0][:-1] + ', "mechanism": "x"}',  # a repeated key
        json.dumps(dict(measured[0], schema=99)),  # a record from a future schema
        "{not json",
    ]
    path = tmp_path / "r.jsonl"
    path.write_bytes("\ufeff".encode() + "\n".join([good[0], *bad, good[1], good[2]]).encode())
    records, problems = _read_quietly(path)
    assert records == measured  # the BOM did not cost the first record
    assert [p.split(":")[1] for p in problems] == ["2", "3", "4", "5"]
    assert "nested too deeply" in problems[0] and "'mechanism' appears twice" in problems[1] and "schema 99" in problems[2]


HOSTILE = {
    "mechanism": [None, 3, ["a"], {"a": 1}, ""],
    "mode": [None, 1.5, ["forward"]],
    "claims": ["flops", [["flops"]], [[1, 2, 3]], [["flops", "seq_len", "2"]], {"a": 1}, [None]],
    "seq_len": [0, -16, "16", [16], 1.5, True],
    "time_s": ["0.1", [0.1], {"x": 1}, True],
    "peak_bytes_per_s": [0, -1.0, "fast"],
    "peak_flops_per_s": [0],
    "status": ["exploded", 1],
    "impl": [3, ["naive"]],
    "error": [["a"], 3],
    "n_heads": [0, "two"],
}


@pytest.mark.parametrize("field,value", [(f, v) for f, vs in HOSTILE.items() for v in vs])
def test_a_record_with_a_wrong_type_is_refused_with_the_field_named(field, value, measured):
    assert validate_record(measured[0]) is None
    reason = validate_record(dict(measured[0], **{field: value}))
    assert reason is not None and (field in reason or "claim" in reason), (field, value, reason)


@st.composite
def crafted_file(draw, measured: list[dict]) -> str:
    lines = []
    for record in measured:
        record = dict(record)
        for field in draw(st.lists(st.sampled_from(sorted(HOSTILE)), max_size=3)):
            record[field] = draw(st.sampled_from(HOSTILE[field]))
        if draw(st.booleans()):
            record[draw(st.sampled_from(["time_s", "flops_counted", "peak_bytes", "params"]))] = draw(
                st.one_of(st.none(), st.integers(-5, 0), st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=4)))
        lines.append(json.dumps(record))
    junk = st.sampled_from(["", "{", "[]", "null", "1", '"x"', "{}", "[" * 5000, '{"mechanism": "m", "mode": "forward"}'])
    for _ in range(draw(st.integers(0, 2))):
        lines.insert(draw(st.integers(0, len(lines))), draw(junk))
    return "\n".join(lines)


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def test_crafted_results_files_never_traceback_in_fit_report_or_merge(measured, fuzz_dir):
    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(text=crafted_file(measured), command=st.sampled_from(["fit", "fit-json", "report", "merge"]))
    def check(text: str, command: str) -> None:
        path = fuzz_dir / "crafted.jsonl"
        path.write_text(text)
        args = {"fit": ["fit", str(path)], "fit-json": ["fit", str(path), "--json"],
                "report": ["report", str(path), "-o", str(fuzz_dir / "r.html")],
                "merge": ["merge", str(path), "-o", str(fuzz_dir / "m.jsonl")]}[command]
        result = runner.invoke(app, args)
        assert result.exit_code in (0, 2), (command, text[:2000], result.output[-2000:], repr(result.exception))
        assert "Traceback" not in result.output

    check()


# --- writing: temporary files, existing results, unusable outputs ----------------------------------------

def test_write_all_never_follows_a_planted_symlink_and_leaves_nothing_on_failure(tmp_path, measured):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "merged.jsonl"
    (tmp_path / "merged.jsonl.tmp").symlink_to(victim)
    write_all(out, measured)
    assert victim.read_text() == "precious" and read(out) == measured

    def failing():
        yield measured[0]
        raise RuntimeError("disk gone")

    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(RuntimeError):
        write_all(out, failing())
    assert sorted(p.name for p in tmp_path.iterdir()) == before and read(out) == measured  # old file intact


def test_compare_never_replaces_an_existing_results_file_without_overwrite(tmp_path, measured):
    results = tmp_path / "x.jsonl"
    write_all(results, measured)
    before = results.read_bytes()
    args = ["compare", "softmax_attention", "--vary", "seq_len=16,32", "--param", "d_model=16", "--mode", "forward", "--max-time", "0.02"]
    refused = runner.invoke(app, [*args, "-o", str(tmp_path / "x.html")])
    assert refused.exit_code == 2 and "x.jsonl" in refused.output and "--overwrite" in refused.output
    as_baseline = runner.invoke(app, [*args, "-o", str(tmp_path / "x.html"), "--baseline", str(results), "--overwrite"])
    assert as_baseline.exit_code == 2 and "--baseline" in as_baseline.output
    assert results.read_bytes() == before and not (tmp_path / "x.html").exists()
    replaced = runner.invoke(app, [*args, "-o", str(tmp_path / "x.html"), "--overwrite"])
    assert replaced.exit_code == 0, replaced.output
    assert [r["seq_len"] for r in read(results)] == [16, 32]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.html", "x.jsonl", "x.session.json"]  # no partial file left


def test_the_default_compare_output_is_not_a_committed_example_and_is_ignored_by_git():
    from effprof.cli.measure import DEFAULT_COMPARE_OUTPUT

    assert DEFAULT_COMPARE_OUTPUT.parts[0] != "reports"
    ignored = (ROOT / ".gitignore").read_text().split()
    assert f"/{DEFAULT_COMPARE_OUTPUT.parts[0]}/" in ignored


def _fifo(tmp_path: Path) -> Path:
    path = tmp_path / "pipe.jsonl"
    os.mkfifo(path)
    return path


@pytest.mark.parametrize("where", ["fifo", "dev_full", "directory"])
@pytest.mark.parametrize("command", ["sweep", "compare", "merge", "report"])
def test_unusable_outputs_are_refused_before_anything_is_measured(tmp_path, measured, where, command):
    target = {"fifo": lambda: _fifo(tmp_path), "dev_full": lambda: Path("/dev/full"), "directory": lambda: tmp_path}[where]()
    results = tmp_path / "in.jsonl"
    write_all(results, measured)
    if command in ("compare", "report") and where != "directory":
        html = tmp_path / "out.html"
        if where == "fifo":
            os.mkfifo(html)
        else:
            html.symlink_to("/dev/full")
        target = html
    args = {"sweep": ["sweep", "softmax_attention", "--vary", "seq_len=16", "-o", str(target)],
            "compare": ["compare", "softmax_attention", "--vary", "seq_len=16", "-o", str(target)],
            "merge": ["merge", str(results), "-o", str(target)],
            "report": ["report", str(results), "-o", str(target)]}[command]
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert result.output.startswith("error: ") and "measuring" not in result.output
    assert read(results) == measured


def test_a_full_disk_names_the_file_keeps_what_was_saved_and_says_how_to_resume(tmp_path, measured):
    out = tmp_path / "r.jsonl"
    write_all(out, measured[:1])
    room = out.stat().st_size + 3 * len(json.dumps(measured[1])) // 2  # room for one more record, not two
    args = ["sweep", "softmax_attention", "--vary", "seq_len=16,32,64", "--param", "d_model=16", "-o", str(out),
            "--max-time", "0.02"]
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail (EFBIG) like a full disk
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (room, hard))
    try:
        result = runner.invoke(app, args)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    records, problems = _read_quietly(out)
    assert len(records) == 2 and not problems  # the record that did not fit left no half line
    assert f"cannot append to {out}" in result.output and "1 records before it are saved" in result.output
    assert "--resume" in result.output


# --- flags ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("flags,named", [
    (["--param", "d_model=16", "--param", "d_model=32"], "given twice"),
    (["--param", "seq_len=16"], "both varied"),
    (["--vary", "d_model=16,32,16"], "'16' twice"),
    (["--vary", "d_model=16,016"], "planned twice"),
    (["--param", "d_model=٦٤"], "ASCII"),
    (["--param", "d_model=６４"], "ASCII"),
    (["--param", "d_model=6_4"], "ASCII"),
    (["--param", "capacity_factor=1_0"], "ASCII"),
    (["--isolate", "--timeout", "inf"], "--timeout"),
    (["--isolate", "--timeout", "1e300"], "--timeout"),
    (["--isolate", "--timeout", "nan"], "--timeout"),
    (["--isolate", "--max-memory", "1"], "--max-memory"),
    (["--isolate", "--max-memory", "63M"], "--max-memory"),
])
def test_ambiguous_or_impossible_flags_are_refused_in_one_line(tmp_path, flags, named):
    name = "moe_topk" if "capacity_factor" in flags[-1] else "softmax_attention"
    result = runner.invoke(app, ["sweep", name, "--vary", "seq_len=16,32", *flags, "-o", str(tmp_path / "r.jsonl")])
    assert result.exit_code == 2 and named in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "r.jsonl").exists()


def test_a_huge_grid_is_refused_before_any_point_is_planned():
    import tracemalloc

    vary = {"seq_len": list(range(1, 2001)), "d_model": list(range(1, 201)), "batch": list(range(1, 201))}
    tracemalloc.start()
    with pytest.raises(ConfigError, match=f"80000000 points, more than {MAX_POINTS}.*--force"):
        plan(["softmax_attention"], vary, ["forward"], {})
    assert tracemalloc.get_traced_memory()[1] < 10 << 20  # nothing was enumerated
    tracemalloc.stop()
    assert len(plan(["softmax_attention"], {"seq_len": [16, 32]}, ["forward"], {})) == 2


# --- sweep warnings ---------------------------------------------------------------------------------------

def test_trouble_in_a_sweep_is_one_line_per_kind_with_its_count():
    ok = {"status": "ok", "load_avg_1m": 0.5, "cpu_count": 2, "time_s": 1.0, "time_iqr_s": 0.05}
    noisy = dict(ok, time_iqr_s=0.5, time_noisy=True)
    records = [ok, noisy, dict(noisy, time_noisy=None), dict(ok, status="oom"), dict(ok, status="timeout"),  # None: a record from before the flag
               dict(ok, load_avg_1m=3.5, time_noisy=True), dict(ok, load_avg_1m=2.0)]  # a stored flag its figures contradict is not counted
    lines = sweep_warnings(records)
    assert lines == [
        "warning: 2 of 7 points failed (1 oom, 1 timeout); their records carry the error",
        "warning: 2 of 7 points have noisy timing (IQR/median > 10%); their records are flagged time_noisy",
        "warning: the machine was busy during 2 of 7 points (load average up to 3.5 on 2 cores); their times may be inflated",
    ]
    assert sweep_warnings([ok, {"status": "ok"}, {"status": "ok", "load_avg_1m": "high", "cpu_count": 2}]) == []


# --- isolated workers -------------------------------------------------------------------------------------

def test_a_worker_death_is_read_after_reaping_and_named():
    assert crash_status(-signal.SIGSEGV, 0, 0, None) == ("crash", "the worker was killed by SIGSEGV")
    assert crash_status(-signal.SIGKILL, 3, 4, None)[0] == "oom"  # the kernel's OOM killer fired meanwhile
    assert crash_status(-signal.SIGKILL, 3, 3, None)[0] == "crash"  # kill -9 from outside
    assert crash_status(1, 0, 0, None) == ("crash", "the worker exited with code 1")


def _kill_worker_during(runner_: IsolatedRunner, sig: int, point: tuple) -> dict:
    def kill() -> None:
        while runner_._process is None or not runner_._process.is_alive():
            time.sleep(0.05)
        time.sleep(1.0)
        os.kill(runner_._process.pid, sig)

    runner_._start()
    threading.Thread(target=kill, daemon=True).start()
    return runner_.measure(*point)


SLEEPY = "tests.plugins.faulty:sleepy_conv"  # a point that sleeps 120 s: killed mid-point on any machine, fast or slow
HANGS = ("sleepy_conv", "forward", {"seq_len": 64, "d_model": 16})


@pytest.fixture
def sleepy():
    from effprof.plugins import load_plugin
    from effprof.registry import unregister

    names = load_plugin(SLEEPY)
    yield HANGS
    for name in names:
        unregister(name)


@pytest.mark.slow
def test_a_worker_killed_by_a_signal_is_a_crash_naming_it_and_the_next_point_runs(sleepy):
    slow = sleepy
    with IsolatedRunner(QUICK, 300, None, plugins=(SLEEPY,)) as isolated:
        record = _kill_worker_during(isolated, signal.SIGSEGV, slow)
        assert (record["status"], record["error"]) == ("crash", "the worker was killed by SIGSEGV")
        after = isolated.measure("softmax_attention", "forward", {"seq_len": 16, "d_model": 16})
        assert after["status"] == "ok"


def test_isolated_workers_load_the_plugins(tmp_path):
    out = tmp_path / "p.jsonl"
    result = runner.invoke(app, ["--plugin", "tests.plugins.short_conv:short_conv", "sweep", "short_conv", "--vary", "seq_len=16",
                                 "--param", "d_model=16", "-o", str(out), "--isolate", "--max-time", "0.02"])
    assert result.exit_code == 0, result.output
    assert [r["status"] for r in read(out)] == ["ok"]


@pytest.mark.slow
def test_kill_9_is_a_crash_and_the_memory_limit_is_the_limit(sleepy):
    slow = sleepy
    with IsolatedRunner(QUICK, 300, 256 << 20, plugins=(SLEEPY,)) as isolated:
        killed = _kill_worker_during(isolated, signal.SIGKILL, slow)
        assert killed["status"] in ("crash", "oom") and "SIGKILL" in killed["error"]
        # 4096² fp32 scores per head are 256 MiB: over the limit, so out of memory, not ok
        big = isolated.measure("softmax_attention", "forward", {"impl": "naive", "seq_len": 4096, "d_model": 64, "n_heads": 4})
        assert big["status"] == "oom"
        small = isolated.measure("softmax_attention", "forward", {"seq_len": 64, "d_model": 16})
        assert small["status"] == "ok"


@pytest.mark.slow
def test_killing_the_parent_kills_the_worker(tmp_path):
    script = (
        "import sys\n"
        "from effprof.measure.isolate import IsolatedRunner\n"
        "from effprof.measure.harness import Options\n"
        "r = IsolatedRunner(Options(max_time_s=0.02, fvcore=False, roofline=False), None, None)\n"
        "r._start()\n"
        "print(r._process.pid, flush=True)\n"
        "r.measure('linear_attention', 'forward', {'impl': 'recurrent', 'seq_len': 1 << 20, 'd_model': 16})\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    worker = int(parent.stdout.readline())
    time.sleep(1.0)  # the point is running
    parent.kill()
    parent.wait()
    for _ in range(50):
        if not _alive(worker):
            break
        time.sleep(0.1)
    assert not _alive(worker)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_an_interrupt_without_an_output_does_not_claim_anything_was_saved(monkeypatch):
    from effprof.cli import output

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("effprof.runner.run_points", interrupted)
    with pytest.raises(output.Interrupted, match="nothing was saved"):
        output.measure_with_progress([("softmax_attention", "forward", {})], QUICK, None)


def test_pending_reads_a_partly_damaged_file(tmp_path, measured):
    path = tmp_path / "r.jsonl"
    path.write_text("\n".join([_lines(measured)[0], "{oops", _lines(measured)[1]]) + "\n")
    points = plan(["softmax_attention"], {"seq_len": [16, 32, 64]}, ["forward"], {"d_model": 16})
    records, _ = _read_quietly(path)
    assert pending(points, records) == points[2:]
    assert stat.S_ISREG(path.stat().st_mode)


@pytest.mark.slow
def test_a_worker_that_cannot_start_is_a_crash_record_not_a_traceback():
    with IsolatedRunner(QUICK, None, None, plugins=("no_such_plugin_module:spec",)) as isolated:
        record = isolated.measure("softmax_attention", "forward", {"seq_len": 16, "d_model": 16})
    assert record["status"] == "crash"
    assert "could not start" in record["error"] and "no_such_plugin_module" in record["error"]


def test_the_main_job_run_again_takes_a_fresh_name(tmp_path, monkeypatch):
    """`effprof compare` at its default output, run twice, keeps the first run's files and writes compare-2.*."""
    monkeypatch.chdir(tmp_path)
    args = ["compare", "softmax_attention", "--vary", "seq_len=16,32,64", "--mode", "forward", "--max-time", "0.01", "--no-breakdown"]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    out = tmp_path / "effprof-out"
    before = (out / "compare.jsonl").read_bytes()
    second = CliRunner().invoke(app, args)
    assert second.exit_code == 0, second.output
    assert (out / "compare.jsonl").read_bytes() == before  # the earlier results untouched
    assert (out / "compare-2.html").exists() and (out / "compare-2.jsonl").exists()
    explicit = CliRunner().invoke(app, [*args, "-o", str(out / "compare.html")])  # named explicitly: refused, not renamed
    assert explicit.exit_code == 2 and "--overwrite" in explicit.output


def test_compare_results_have_ordinary_permissions(tmp_path, monkeypatch):
    """The results a compare measures into a unique temporary file end up readable as any file the user writes
    (mkstemp's files are private: 0600)."""
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["compare", "softmax_attention", "--vary", "seq_len=16,32,64", "--mode", "forward",
                                      "--max-time", "0.01", "--no-breakdown", "-o", "c.html"])
    assert result.exit_code == 0, result.output
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE((tmp_path / "c.jsonl").stat().st_mode) == 0o666 & ~mask
