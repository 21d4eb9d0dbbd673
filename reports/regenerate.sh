#!/usr/bin/env bash
# Regenerates the example reports and pictures that the README links to (about 12 minutes on 2 CPU cores).
#   bash reports/regenerate.sh
set -euo pipefail
cd "$(dirname "$0")/.."
figures=$(mktemp -d)
effprof compare softmax_attention linear_attention --vary seq_len=512,1024,2048,4096 --mode forward -o reports/attention.html --overwrite \
  --figures "$figures"
cp "$figures/forward-time.png" reports/figure-forward-time.png
effprof compare -o reports/compare.html --overwrite
effprof compare softmax_attention sliding_window longformer bigbird reformer routing topk_attention block_sparse sparse_transformer \
  --vary seq_len=512,1024,2048,4096,8192 --mode forward -o reports/sparse.html --max-time 0.5 --overwrite
effprof compare sliding_window softmax_attention --vary seq_len=2048,4096,8192,16384 --param d_model=512 --param n_heads=8 \
  --param sliding_window.window=256 --mode forward --max-time 2 -o reports/sparse-vs-sdpa.html --overwrite
rm -f reports/ssm.jsonl reports/ssm.session.json
effprof sweep mamba --vary impl=sequential,chunked,chunked_c --vary seq_len=1024,2048,4096 -o reports/ssm.jsonl
effprof sweep mamba2 --vary impl=recurrent,chunked --vary seq_len=1024,2048,4096 -o reports/ssm.jsonl
effprof sweep s4 --vary impl=recurrent,fft --vary seq_len=1024,2048,4096 -o reports/ssm.jsonl
effprof report reports/ssm.jsonl -o reports/ssm.html
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
  --disable-component-update --disable-sync --user-data-dir="$(mktemp -d)" --window-size=1300,1500 \
  --virtual-time-budget=10000 --screenshot=reports/compare-top.png "file://$PWD/reports/compare.html" 2>/dev/null
