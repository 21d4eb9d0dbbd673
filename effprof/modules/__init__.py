"""Any PyTorch module as an effprof mechanism: `--module pkg.mod:factory` or `--module hf:llama.attention`.

A factory is a function (or class) whose keyword parameters are config keys:

    def my_layer(d_model: int, seq_len: int, n_heads: int = 4, rope: bool = True) -> nn.Module: ...
    def my_layer(d_model: int, batch: int, seq_len: int) -> tuple[nn.Module, dict]: ...   # (module, inputs)

`factory(**config)` returns either a module whose `forward(x)` maps effprof's input
x: (batch, seq_len, d_model) to the same shape, or `(module, inputs)` where `inputs`
are the other arguments the module needs beside x (a dict of keyword arguments, or a
tuple of positional arguments after x): masks, position embeddings, ids. x is always
passed first; the output (or its first element, for modules returning tuples) must
have x's shape.

Config keys. The factory receives the keys it names (every key when it takes
**kwargs). A key of effprof.config.KEYS (d_model, n_heads, window, ...; ARCHITECTURE.md § Config keys) is typed as
declared there; any other parameter is typed by its default (int, float, bool or
str), so `--param rope=false` arrives as False. Every parameter needs a default,
except the run keys batch, seq_len, d_model, gen_len, dtype and device, which
effprof always supplies. A key the factory does not name is refused with the list
of those it accepts.

What is measured. Everything that needs no spec: counted FLOPs (and fvcore beside
them), time, peak and activation memory, params, in modes forward and train; decode
too when the module follows effprof's step contract (init_state, prefill, step; see
effprof.mechanisms.base) and is causal. Analytic FLOPs are empty (None, never 0) and
claims are those given with `--claim flops:seq_len=2` (effprof.modules.parse_claim).

When a factory is first named, it is built once at small sizes (seq_len 16) and run:
a factory that raises, a module whose output has the wrong shape, inputs that do
not fit end the command with one line (exit 2) before anything is measured. At the
measured sizes, the same failures become `error` records of the sweep.

The mechanism's name is the target itself ("pkg.mod:factory", "hf:llama.attention"),
so records, fits and reports name it as the user did.

The package: spec.py (ModuleSpec: a factory target's spec, registered on first use), claims.py
(--claim parsing), factory.py (importing a factory and typing its keys), probe.py (the first build
at small sizes, and building from a spec), wrap.py (a module called with other inputs beside x),
objects.py (a module or factory given as a Python object), hf*.py (Hugging Face layers).
Importing it lets the registry make a factory target on first use (registry.add_maker).
"""

from __future__ import annotations

from effprof import registry
from effprof.modules.claims import parse_claim, split_claim
from effprof.modules.probe import DECODE_METHODS, PROBE_SEQ_LEN, build_with_spec, probe_input
from effprof.modules.spec import (
    ModuleDefinition,
    ModuleSpec,
    Probe,
    definition,
    is_module_target,
    module_spec,
    register_definition,
    resolve_targets,
)

__all__ = [
    "DECODE_METHODS", "PROBE_SEQ_LEN", "ModuleDefinition", "ModuleSpec", "Probe", "build_with_spec", "definition",
    "is_module_target", "module_spec", "parse_claim", "probe_input", "register_definition", "resolve_targets", "split_claim",
]

registry.add_maker(is_module_target, module_spec)  # get_spec("pkg.mod:factory") makes the target on first use
