#!/usr/bin/env bash
# Regenerates the example reports that the README links to (about 5 minutes on 2 CPU cores).
#   bash reports/regenerate.sh
set -euo pipefail
cd "$(dirname "$0")/.."
effprof compare softmax_attention linear_attention --vary seq_len=512,1024,2048,4096 -o reports/attention.html
effprof compare -o reports/compare.html
effprof report reports/compare.jsonl -o reports/compare.html --latex reports/compare.tex --csv reports/compare.csv
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
  --disable-component-update --disable-sync --user-data-dir="$(mktemp -d)" --window-size=1300,1500 \
  --virtual-time-budget=10000 --screenshot=reports/compare-top.png "file://$PWD/reports/compare.html" 2>/dev/null
