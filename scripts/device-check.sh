#!/usr/bin/env bash
# The CUDA check: one run on the GPU machine proves or disproves effprof's CUDA paths and records figures.
#
# Where: the repository root on a machine with one NVIDIA GPU and no network, whose python3 already holds a
# CUDA torch and effprof's other needs except the wheels scripts/device-wheels.sh downloads into .whl/.
# What it writes under $OUT (8 files at most come back from the device tool):
#   device-check.log    everything printed: GPU and torch facts, each step's output, its exit code and time
#   cuda-tests.xml      pytest's JUnit record of the `cuda` tests in tests/test_cuda.py (their CPU variants,
#                       run next with pytest-xdist on the machine's cores, report in the log)
#   cuda-memory.jsonl   softmax_attention naive / tiled / sdpa at 16K-64K tokens, bf16, forward: peak bytes
#   cuda-dtype.jsonl    fp32 against bf16 at 16K tokens (softmax_attention sdpa, mamba; forward and train)
#   cuda-scan.jsonl     mamba's chunked scan against its sequential torch reference, mamba2's chunked (SSD)
#                       against its recurrent reference, at 2K tokens, bf16
#   cuda-compare.html   + cuda-compare.jsonl: the benchmark of issue 18 (5 mechanisms, 1K-64K tokens, bf16)
#   summary.txt         one line per measured point: status, peak memory, time, counted/analytic FLOPs
# The log also holds the projection step: each timed CUDA point's roofline projection for the GPU found
# (effprof.hardware.check: datasheet figures, a lower bound) against its measured time, with the error.
# Each step runs under its own `timeout` and the script carries on past a failing one, so a single run
# gives all the evidence. The step limits add up to 7.8 minutes; a run that passes takes less (the machine's
# start, about a minute, comes on top: call the device tool with timeout_s 540).
#
# Usage (device tool, with .whl carried):  OUT=... scripts/device-check.sh
# Dry run on a CPU (tiny sizes, device cpu, no install):  EFFPROF_DEVICE_CHECK_CPU=1 OUT=/tmp/x scripts/device-check.sh
set -u -o pipefail

: "${OUT:?set OUT to the folder the results go to}"
mkdir -p "$OUT"
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1

if [ "${EFFPROF_DEVICE_CHECK_CPU:-0}" = 1 ]; then
    device=cpu
    compare_lengths=64,128 memory_lengths=256,512 dtype_length=128 scan_length=64 d_model=32
else
    device=cuda
    compare_lengths=1024,4096,16384,65536 memory_lengths=16384,32768,65536 dtype_length=16384 scan_length=2048
    d_model=128                                  # effprof's default width
fi
results=()

step() {  # step NAME SECONDS COMMAND...: run it under a time limit, log its exit code and time, never stop
    local name=$1 limit=$2 start rc
    shift 2
    echo
    echo "=== $name (limit ${limit}s): $*"
    start=$(date +%s)
    timeout -k 10 "$limit" bash -c '"$@"' step "$@"  # bash -c: a step may be one of the functions below
    rc=$?
    [ $rc = 124 ] && echo "=== $name: TIMED OUT after ${limit}s"
    echo "=== $name: exit $rc in $(( $(date +%s) - start ))s"
    results+=("$name: exit $rc in $(( $(date +%s) - start ))s")
    return $rc
}

install() {
    if [ "$device" = cpu ]; then
        echo "dry run: using this machine's packages"
    elif ls .whl/*.whl >/dev/null 2>&1; then
        python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    else
        echo "no .whl/ here: run scripts/device-wheels.sh and carry .whl (fvcore and plotly are missing there)" >&2
        return 1
    fi
}

facts() {
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
    python3 - <<'EOF'
import importlib, platform, torch
print("python", platform.python_version(), "| torch", torch.__version__, "| CUDA", torch.version.cuda,
      "| cuDNN", torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None)
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print("device", p.name, f"sm_{p.major}{p.minor}", f"{p.total_memory / 2**30:.1f} GiB", p.multi_processor_count, "SMs")
    b = torch.backends.cuda
    print("sdpa backends enabled: flash", b.flash_sdp_enabled(), "| efficient", b.mem_efficient_sdp_enabled(),
          "| cudnn", b.cudnn_sdp_enabled(), "| math", b.math_sdp_enabled(), "| tf32 matmul", b.matmul.allow_tf32)
else:
    print("no CUDA device")
for name in ("effprof", "fvcore", "plotly", "pandas", "typer", "pytest"):
    module = importlib.import_module(name)
    print(f"{name} {getattr(module, '__version__', '?')} from {module.__file__}")
EOF
}

summary() {
    python3 - "$OUT" <<'EOF'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
rows = []
for path in sorted(out.glob("cuda-*.jsonl")):
    for line in path.read_text().splitlines():
        r = json.loads(line)
        ratio = r["flops_counted"] / r["flops_analytic"] if r.get("flops_counted") and r.get("flops_analytic") else None
        rows.append((path.stem, r["mechanism"], r.get("impl") or "-", r["dtype"], r["mode"], r["seq_len"], r["status"],
                     f'{r["peak_bytes"] / 2**20:.1f}' if r.get("peak_bytes") is not None else "-",
                     f'{r["time_s"] * 1e3:.3f}' if r.get("time_s") else "-",
                     f"{ratio:.4f}" if ratio else "-",
                     f'{r["state_bytes"] / 2**20:.2f}' if r.get("state_bytes") is not None else "-",
                     r.get("device_name", ""), (r.get("error") or "")[:80]))
header = ("file", "mechanism", "impl", "dtype", "mode", "seq_len", "status", "peak_MiB", "time_ms",
          "counted/analytic", "state_MiB", "device", "error")
widths = [max(len(str(x)) for x in column) for column in zip(header, *rows)]
lines = ["  ".join(str(x).ljust(w) for x, w in zip(row, widths)).rstrip() for row in (header, *rows)]
(out / "summary.txt").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
EOF
}

export -f install facts summary
export device OUT

main() {
    echo "effprof device check on $device, $(date -u +%Y-%m-%dT%H:%M:%SZ), git $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
    export PYTHONPATH="$PWD"
    step install 20 install && [ "$device" = cuda ] && export PYTHONPATH="$PWD:/tmp/site"
    step facts 30 facts
    step tests-cuda 100 python3 -m pytest tests/test_cuda.py -q -rfEs -p no:cacheprovider -m cuda --durations=5 \
        --junitxml "$OUT/cuda-tests.xml"
    [ "$device" = cuda ] && step tests-cpu-variants 30 python3 -m pytest tests/test_cuda.py -q -rfE -p no:cacheprovider \
        -m "not cuda" $(python3 -c "import xdist" 2>/dev/null && echo "-n 8")
    local common=(--param "device=$device" --param "d_model=$d_model" --max-time 0.1)
    step memory 60 python3 -m effprof sweep softmax_attention --vary impl=naive,tiled,sdpa \
        --vary "seq_len=$memory_lengths" --param dtype=bfloat16 --mode forward --force "${common[@]}" \
        -o "$OUT/cuda-memory.jsonl"
    step dtype 40 python3 -m effprof sweep softmax_attention mamba --vary dtype=float32,bfloat16 \
        --param "seq_len=$dtype_length" --mode forward --mode train "${common[@]}" -o "$OUT/cuda-dtype.jsonl"
    step scan-mamba 25 python3 -m effprof sweep mamba --vary impl=chunked,sequential --param "seq_len=$scan_length" \
        --param dtype=bfloat16 --mode forward "${common[@]}" -o "$OUT/cuda-scan.jsonl"
    step scan-mamba2 15 python3 -m effprof sweep mamba2 --vary impl=chunked,recurrent --param "seq_len=$scan_length" \
        --param dtype=bfloat16 --mode forward "${common[@]}" -o "$OUT/cuda-scan.jsonl"
    step compare 120 python3 -m effprof compare softmax_attention linear_attention mamba mamba2 sliding_window \
        --vary "seq_len=$compare_lengths" --param dtype=bfloat16 "${common[@]}" -o "$OUT/cuda-compare.html"
    step summary 10 summary
    # the roofline projection for this GPU (detected from the records' device name) against the measured CUDA
    # times; the dry run projects its CPU records onto h100-sxm only to exercise the step (those errors mean nothing)
    local project=()
    [ "$device" = cpu ] && project=(--hardware h100-sxm)
    step projection 15 python3 scripts/hardware-check.py "$OUT"/cuda-*.jsonl "${project[@]}"
    echo
    echo "=== steps"
    printf '%s\n' "${results[@]}"
}

main 2>&1 | tee "$OUT/device-check.log"
