#!/usr/bin/env bash
# Download the wheels scripts/device-check.sh installs on the GPU machine, which has no network.
#
# That machine's python3 (3.12, x86-64) already holds torch (CUDA), pandas, numpy, scipy, typer, rich,
# click, jinja2, pytest, hypothesis, and fvcore's and plotly's own needs (pyyaml, tqdm, pillow, tabulate,
# portalocker, typing-extensions, narwhals, packaging). Missing: fvcore, iopath, yacs, termcolor, plotly.
# Binary wheels are fetched for python 3.12 on manylinux x86-64 (the flags the device README gives);
# fvcore and iopath publish source only, so they are built here into pure-python wheels (py3-none-any).
# Versions are pinned to the ones this project is tested with.
#
# Usage: scripts/device-wheels.sh [DIR]     (DIR defaults to .whl, which must be git-ignored:
#        `echo /.whl/ >> .git/info/exclude` in the checkout the device tool sends)
set -euo pipefail

dir="${1:-.whl}"
mkdir -p "$dir"

binary=(plotly==7.1.0 yacs==0.1.8 termcolor==3.3.0)
source_only=(fvcore==0.1.5.post20221221 iopath==0.1.10)

python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d "$dir" "${binary[@]}"
python3 -m pip wheel -q --no-deps --no-build-isolation -w "$dir" "${source_only[@]}"

# one version of each: two stop the whole install there
dupes=$(ls "$dir"/*.whl | xargs -n1 basename | cut -d- -f1 | tr 'A-Z_' 'a-z-' | sort | uniq -d)
if [ -n "$dupes" ]; then
    echo "more than one wheel of: $dupes (in $dir); remove the older" >&2
    exit 1
fi
for wheel in "$dir"/*.whl; do
    case "$wheel" in *-py3-none-any.whl | *-py2.py3-none-any.whl | *cp312*manylinux*x86_64*.whl) ;;
        *) echo "not installable on python 3.12 x86-64: $wheel" >&2; exit 1 ;; esac
done
du -ch "$dir"/*.whl | tail -1
