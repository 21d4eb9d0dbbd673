"""A test plugin whose data is hostile to a terminal: its summary and the error its points raise carry
escape sequences (retitle, clear screen, an OSC 8 link, a bell) and rich markup (`[/path]`, `[bold]`).

It is the short convolution of short_conv.py below FAIL_AT tokens (so it passes the plugin contract
check, run at 12 tokens); at FAIL_AT tokens and more, its forward pass raises HOSTILE as its error.
"""

from __future__ import annotations

from effprof.registry import MechanismSpec
from tests.plugins.short_conv import SPEC, ShortConv

FAIL_AT = 64  # tokens
HOSTILE = "\x1b]0;pwned\x07\x1b[2J\x1b]8;;http://evil.example\x1b\\link\x1b]8;;\x1b\\ [/path] [bold]x[/bold] \x9b31m\x07"


class HostileConv(ShortConv):
    def forward(self, x):  # x: (batch, seq_len, d_model)
        if x.shape[1] >= FAIL_AT:
            raise RuntimeError(f"cannot read {HOSTILE}")
        return super().forward(x)


hostile_conv = MechanismSpec(name="hostile_conv", builder=lambda config: HostileConv(config["d_model"]),
                             **{**SPEC, "summary": f"short conv {HOSTILE}"})
