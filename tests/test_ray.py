"""The ray executor (effprof[ray]): the same records as the local executor, faults and timeouts as records,
an interrupted or resumed sweep that loses nothing, and the resources each point reserves.

One local Ray instance (num_cpus=2, no dashboard) serves the module; the CLI tests run in this process and
use it. The interrupt test drives a real `python3 -m effprof sweep --executor ray` subprocess (its own Ray).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

ray = pytest.importorskip("ray", reason="ray is not installed: pip install 'effprof[ray]' to test --executor ray")

import effprof
from effprof.cli import app
from effprof.config import ConfigError, resolve_config
from effprof.cost_model import estimated_bytes
from effprof.executors import make_executor
from effprof.executors.machines import machine_kinds, mixed_machines_warning
from effprof.executors.ray import WORKER_BYTES, Cluster, RayExecutor, check_address, fault, task_resources
from effprof.measure.harness import Options
from effprof.registry import get_spec, unregister
from effprof.runner import plan, run_points
from effprof.store.records import point_identity, read

runner = CliRunner()
QUICK = Options(max_time_s=0.02, fvcore=False, roofline=False)
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture
def faulty_plugins():
    from effprof.plugins import load_plugin

    names = [n for target in ("killer_conv", "sleepy_conv") for n in load_plugin(f"tests.plugins.faulty:{target}")]
    yield names
    for name in names:
        unregister(name)


def test_ray_records_equal_the_local_records_in_everything_but_time(local_ray):
    """Through the Python API: effprof.sweep(..., executor="ray")."""
    points = plan(["softmax_attention", "linear_attention"], {"seq_len": [16, 32]}, ["forward"], {"d_model": 16})
    local = {point_identity(r): r for r in run_points(points, QUICK)}
    frame = effprof.sweep(["softmax_attention", "linear_attention"], vary={"seq_len": [16, 32]}, executor="ray", options=QUICK, d_model=16)
    remote = frame.to_dict("records")
    assert len(remote) == len(points) and {point_identity(r) for r in remote} == set(local)
    for record in remote:
        mine = local[point_identity(record)]
        assert record["status"] == "ok", record["error"]
        for key in ("flops_analytic", "flops_counted", "params", "state_bytes", "peak_bytes"):
            assert record[key] == mine[key], (key, point_identity(record))
        assert record["node_id"] == ray.get_runtime_context().get_node_id()
        assert record["hostname"] and record["cpu_model"] == mine["cpu_model"]
        assert record["threads"] == 2  # --threads 0 and timed: the whole (2-CPU) node


def test_a_killed_worker_gives_a_crash_record_and_the_other_points_finish(local_ray, faulty_plugins, tmp_path):
    out = tmp_path / "r.jsonl"
    points = [("killer_conv", "forward", {"seq_len": 64, "d_model": 16}),  # SIGKILLs its worker mid-point
              ("killer_conv", "forward", {"seq_len": 16, "d_model": 16}),
              ("softmax_attention", "forward", {"seq_len": 16, "d_model": 16})]
    with RayExecutor() as executor:
        records = run_points(points, QUICK, str(out), executor=executor)
    status = {(r["mechanism"], r["seq_len"]): r for r in records}
    crashed = status[("killer_conv", 64)]
    assert crashed["status"] == "crash" and "worker died" in crashed["error"]
    assert crashed["node_id"] and crashed["hostname"] in crashed["error"]  # where it happened
    assert status[("killer_conv", 16)]["status"] == status[("softmax_attention", 16)]["status"] == "ok"
    assert len(read(out)) == 3  # every record on disk, the crash too


def test_a_point_past_timeout_is_cancelled_and_gives_a_timeout_record(local_ray, faulty_plugins):
    points = [("sleepy_conv", "forward", {"seq_len": 64, "d_model": 16}), ("sleepy_conv", "forward", {"seq_len": 16, "d_model": 16})]
    light = Options(timing=False, memory=False, fvcore=False, roofline=False)  # the short point: well within 4 s, even on a busy machine
    with RayExecutor(timeout_s=4) as executor:
        records = run_points(points, light, executor=executor)
    status = {r["seq_len"]: r for r in records}
    assert status[64]["status"] == "timeout" and "--timeout 4 s" in status[64]["error"]
    assert status[16]["status"] == "ok"


def test_resume_with_ray_measures_only_the_rest(local_ray, tmp_path):
    out = tmp_path / "r.jsonl"
    base = ["sweep", "softmax_attention", "--param", "d_model=16", "-o", str(out), "--max-time", "0.02"]
    assert runner.invoke(app, [*base, "--vary", "seq_len=16,32"]).exit_code == 0
    result = runner.invoke(app, [*base, "--vary", "seq_len=16,32,64,128", "--resume", "--executor", "ray"])
    assert result.exit_code == 0, result.output
    assert "2 of 4 points already" in result.output
    records = read(out)
    assert sorted(r["seq_len"] for r in records) == [16, 32, 64, 128]
    assert [bool(r.get("node_id")) for r in records] == [False, False, True, True]  # only the rest ran on Ray


def test_check_runs_its_points_on_ray_and_judges_them(local_ray, tmp_path):
    checks = tmp_path / "checks.toml"
    checks.write_text('''
[[claims]]
mechanism = "linear_attention"
params = { d_model = 16, impl = "chunked", chunk_size = 8 }
axis = "seq_len"
values = [32, 64, 128]
metric = "flops"
exponent = 1.0
tolerance = 0.1
''')
    out = tmp_path / "r.jsonl"
    result = runner.invoke(app, ["check", str(checks), "--executor", "ray", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "1 of 1 checks hold" in result.output
    records = read(out)
    assert len(records) == 3 and all(r["node_id"] and r["threads"] == 1 for r in records)  # untimed: one core each


@pytest.mark.slow
def test_interrupted_ray_sweep_keeps_finished_records_and_prints_the_resume_command(tmp_path):
    out = tmp_path / "r.jsonl"
    args = [sys.executable, "-m", "effprof", "sweep", "linear_attention", "--vary", "seq_len=32,64,128,256,512,1024,2048,4096",
            "--param", "impl=recurrent", "--param", "d_model=16", "-o", str(out), "--max-time", "0.5", "--executor", "ray"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    deadline = time.time() + 150
    while time.time() < deadline and (not out.exists() or len(out.read_text().splitlines()) < 2):
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    lines = out.read_text().splitlines()
    assert 2 <= len(lines) < 8
    assert all(json.loads(line)["status"] == "ok" for line in lines)  # whole lines: nothing half-written
    assert "resume with:" in stderr and "--resume" in stderr and "--executor ray" in stderr and "Traceback" not in stderr


def test_timed_points_reserve_a_whole_node_untimed_and_cuda_points_their_threads():
    spec = get_spec("softmax_attention")
    cpu = resolve_config(spec, {"seq_len": 1024, "d_model": 64})
    cluster = Cluster(min_cpus=8, max_cpus=32, max_gpus=4, max_memory=64 << 30)
    options, resources = task_resources(spec, cpu, "forward", Options(), cluster)
    assert options.threads == resources["num_cpus"] == 8 and resources["num_gpus"] == 0
    assert resources["memory"] == WORKER_BYTES + int(estimated_bytes(spec, cpu, "forward"))
    assert task_resources(spec, cpu, "forward", Options(timing=False), cluster)[1]["num_cpus"] == 1
    options, resources = task_resources(spec, cpu, "forward", Options(threads=4), cluster)
    assert (options.threads, resources["num_cpus"]) == (4, 8)  # 4 threads, and still the node to itself
    assert task_resources(spec, cpu, "forward", Options(threads=16), cluster)[1]["num_cpus"] == 16
    assert task_resources(spec, cpu, "forward", Options(threads=4, timing=False), cluster)[1]["num_cpus"] == 4
    cuda = {**cpu, "device": "cuda"}
    assert task_resources(spec, cuda, "forward", Options(), cluster)[1] == {"num_cpus": 1, "num_gpus": 1, "memory": WORKER_BYTES}
    huge = resolve_config(spec, {"seq_len": 1 << 20, "d_model": 64, "impl": "naive"})  # --force: runs alone on the largest node
    assert task_resources(spec, huge, "forward", Options(), cluster)[1]["memory"] == 64 << 30


def test_points_the_cluster_cannot_hold_are_refused():
    spec = get_spec("softmax_attention")
    config = resolve_config(spec, {"seq_len": 64, "d_model": 16})
    cpu_only = Cluster(min_cpus=2, max_cpus=2, max_gpus=0, max_memory=8 << 30)
    with pytest.raises(ConfigError, match=r"--threads 4 .* accepted: 0 to 2"):
        task_resources(spec, config, "forward", Options(threads=4), cpu_only)
    with pytest.raises(ConfigError, match="no node of the Ray cluster has a GPU"):
        task_resources(spec, {**config, "device": "cuda"}, "forward", Options(), cpu_only)
    with pytest.raises(ConfigError, match="give device=cuda"):
        task_resources(spec, {**config, "device": "cuda:1"}, "forward", Options(), Cluster(1, 1, 2, 8 << 30))
    with pytest.raises(ConfigError, match="no node with a CPU"):
        Cluster.of([{"Alive": True, "Resources": {"GPU": 1.0, "memory": 1e9}}, {"Alive": False, "Resources": {"CPU": 8.0}}])


def test_worker_faults_map_to_statuses():
    from ray import exceptions

    assert fault(exceptions.OutOfMemoryError("Task was killed due to the node running low on memory"))[0] == "oom"
    assert fault(exceptions.WorkerCrashedError())[0] == "crash"
    status, message = fault(exceptions.NodeDiedError("node 1234 died"))
    assert status == "crash" and "node was lost" in message
    status, message = fault(exceptions.RayTaskError("f", "tb", ValueError("bad size")))
    assert (status, message) == ("error", "ValueError: bad size")


@pytest.mark.parametrize("address", ["auto", "ray://head:10001", "10.0.0.1:6379", None])
def test_good_addresses_are_accepted(address):
    assert check_address(address) == address


@pytest.mark.parametrize("args, message", [
    (["--executor", "ray", "--isolate"], "--isolate means --executor process; it contradicts --executor ray"),
    (["--executor", "local", "--address", "auto"], "--address 'auto' picks a Ray cluster; it needs --executor ray"),
    (["--executor", "ray", "--address", "http://head"], "--address 'http://head' is not a Ray address; accepted: auto"),
    (["--executor", "dask"], "--executor 'dask' is not an executor; accepted: local, process, ray"),
    (["--executor", "ray", "--max-memory", "1G"], "--max-memory is the process executor's limit"),
    (["--executor", "ray", "--address", "127.0.0.1:1"], "--address '127.0.0.1:1': nothing answers at 127.0.0.1:1"),
    (["--executor", "ray", "--address", "ray://localhost:99999999999999999999"], "is not a Ray address; accepted: auto"),
    (["--executor", "ray", "--address", "ray://localhost:70000"], "port 70000 is not a port; accepted: 1 to 65535"),
    (["--executor", "ray", "--address", "localhost:0"], "port 0 is not a port"),
    (["--executor", "ray", "--address", "ray://hé:10001"], "is not a Ray address"),
])
def test_contradictory_or_bad_executor_flags_exit_2_with_one_line(args, message, tmp_path):
    out = tmp_path / "r.jsonl"
    result = runner.invoke(app, ["sweep", "softmax_attention", "--vary", "seq_len=16", *args, "-o", str(out)])
    assert result.exit_code == 2 and message in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1 and not out.exists()


def test_ray_missing_exits_2_naming_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as on an install without the extra
    with pytest.raises(ConfigError, match=r"pip install 'effprof\[ray\]'"):
        make_executor("ray")
    result = runner.invoke(app, ["check", "--executor", "ray"])
    assert result.exit_code == 2 and "pip install 'effprof[ray]'" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_records_from_two_kinds_of_machine_are_flagged():
    a = {"status": "ok", "device": "cpu", "cpu_model": "AMD EPYC 7763"}
    b = {"status": "ok", "device": "cpu", "cpu_model": "Intel Xeon 8480"}
    gpu = {"status": "ok", "device": "cuda", "device_name": "NVIDIA H100", "cpu_model": "AMD EPYC 7763"}
    assert mixed_machines_warning([a, dict(a)]) is None
    assert mixed_machines_warning([gpu, {**gpu, "cpu_model": "Intel Xeon 8480"}]) is None  # GPU times: the GPU decides
    assert mixed_machines_warning([a, {**b, "status": "crash"}]) is None  # a failed point has no time to mix
    assert machine_kinds([a, a, b]) == {"AMD EPYC 7763": 2, "Intel Xeon 8480": 1}
    warning = mixed_machines_warning([a, a, b])
    assert "2 kinds of machine" in warning and "AMD EPYC 7763 (2)" in warning
