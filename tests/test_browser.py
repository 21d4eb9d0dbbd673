"""The report in a real browser: headless Chromium loads it offline, no console errors, every plot rendered."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile

import pytest

from effprof.analysis import analyse
from effprof.render.html import write
from tests.test_report import _frame

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--virtual-time-budget=10000"]

if CHROMIUM is None:
    pytestmark = pytest.mark.skipif(os.environ.get("CI") != "true", reason="Chromium is not installed (.ci/run installs it)")


def _dom(path: str) -> str:
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", f"file://{path}"], check=False,
                              capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _noisy_session():
    from tests.test_session import _crossing_records

    return analyse(_crossing_records(noisy_at=32))


@pytest.mark.parametrize("noisy", [False, True], ids=["quiet", "noisy"])
def test_report_renders_without_errors(tmp_path, noisy):
    """Both pages draw every plot without a JavaScript error; the noisy one with open markers and IQR bars."""
    assert CHROMIUM, "Chromium is missing: .ci/run installs it (apt-get install chromium)"
    if noisy:
        path = write(_noisy_session(), tmp_path / "report.html")
    else:
        frame = _frame()
        path = write(analyse(frame, command="effprof compare m"), tmp_path / "report.html")
    dom = _dom(str(path))
    body = re.search(r"<body([^>]*)>", dom).group(1)
    errors = json.loads(re.search(r'data-errors="([^"]*)"', body).group(1).replace("&quot;", '"'))
    plots = int(re.search(r'data-plots="(\d+)"', body).group(1))
    rendered = int(re.search(r'data-rendered="(\d+)"', body).group(1))
    assert errors == []
    assert plots >= (2 if noisy else 4) and rendered == plots  # flops, time (, peak memory, state)
