"""Test plugins that fault on purpose, for the executors' fault handling (tests/test_ray.py).

Both are the short convolution of short_conv.py below FAULT_AT tokens, so they pass the plugin
contract check (run at 12 tokens); at FAULT_AT tokens and more, in the middle of a point:

    killer_conv   kills its own process with SIGKILL (a worker crash, as a segfault or OOM kill would)
    sleepy_conv   sleeps for SLEEP_S seconds (a point that hangs, for --timeout)
"""

from __future__ import annotations

import os
import signal
import time

from tests.plugins.short_conv import ShortConv, _spec

FAULT_AT = 64  # tokens
SLEEP_S = 120.0


class KillerConv(ShortConv):
    def forward(self, x):  # x: (batch, seq_len, d_model)
        if x.shape[1] >= FAULT_AT:
            os.kill(os.getpid(), signal.SIGKILL)
        return super().forward(x)


class SleepyConv(ShortConv):
    def forward(self, x):  # x: (batch, seq_len, d_model)
        if x.shape[1] >= FAULT_AT:
            time.sleep(SLEEP_S)
        return super().forward(x)


killer_conv = _spec("killer_conv", lambda config: KillerConv(config["d_model"]))
sleepy_conv = _spec("sleepy_conv", lambda config: SleepyConv(config["d_model"]))
