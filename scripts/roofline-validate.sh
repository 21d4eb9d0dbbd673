#!/usr/bin/env bash
# Regenerates the README's "predicted against measured" roofline table on this machine: the ceilings are
# measured again (microbenchmarks only), then every registered mechanism's default form in forward mode is
# measured and predicted at each size. Prints the machine's load before and after (quote it beside the figures).
# Usage: scripts/roofline-validate.sh [extra args for python3 scripts/roofline-check.py, e.g. --sizes 1024,4096,16384]
# Writes effprof-out/roofline-check.md (the table; effprof-out/ is git-ignored).
set -eu -o pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
echo "before: $(uptime)"
mkdir -p effprof-out
python3 scripts/roofline-check.py --clock cpu --markdown effprof-out/roofline-check.md "$@"
echo "after: $(uptime)"
