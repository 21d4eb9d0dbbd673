"""The `effprof` command line: one module per command group, no logic here.

Every bad input ends with exit code 2 and one line naming the bad value and what
is accepted, never a traceback; a failed check exits 1.
"""

from __future__ import annotations

import os
import sys

import typer
from typer.core import TyperGroup

from effprof.config import ConfigError
from effprof.render.escape import terminal

# Only typer's public API: current typer vendors its own click (older releases use click itself), so the
# usage-error class is found through typer.BadParameter, whichever click that is. click is no dependency.
USAGE_ERRORS = tuple(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")
ABORTS = (typer.Abort,)
echo = typer.echo


class BadInput(Exception):
    """Raised by commands for input they refuse; printed as one line, exit 2."""


def hoist_plugins(args: list[str]) -> list[str]:
    """Move every `--plugin X` / `--plugin=X` to the front, so plugins load before any command runs
    wherever they are written (`effprof list --plugin X` = `effprof --plugin X list`); after `--`, nothing moves."""
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest.extend(args[i:])
            break
        if arg == "--plugin" and i + 1 < len(args):
            front += args[i : i + 2]
            i += 2
            continue
        if arg.startswith("--plugin="):
            front.append(arg)
        else:
            rest.append(arg)
        i += 1
    return front + rest


class EffprofGroup(TyperGroup):
    """Runs a command and turns every expected failure into one line and an exit code."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        from effprof.store.records import ResultsError

        _readable_metavars(self)

        args = hoist_plugins(sys.argv[1:] if args is None else list(args))
        try:
            rv = super().main(args=args, prog_name=prog_name, complete_var=complete_var, standalone_mode=False, **extra)
        except USAGE_ERRORS as e:
            if type(e).__name__ == "NoArgsIsHelpError":
                echo(e.ctx.get_help() if e.ctx else str(e))
                sys.exit(2)
            message = " ".join(terminal(e.format_message()).split())
            command = e.ctx.command_path if e.ctx else "effprof"
            echo(f"error: {message} (see '{command} --help')", err=True)
            sys.exit(2)
        except (ConfigError, BadInput, ResultsError) as e:
            echo(f"error: {terminal(e)}", err=True)  # names from data or plugins: no escape sequence reaches the terminal
            sys.exit(2)
        except BrokenPipeError:
            _quiet_broken_pipe()
        except OSError as e:
            where = f"{e.filename}: " if e.filename else ""
            echo(f"error: {terminal(where)}{terminal(e.strerror or e)}", err=True)
            sys.exit(2)
        except ABORTS:
            echo("interrupted", err=True)
            sys.exit(130)
        except KeyboardInterrupt:
            echo("interrupted", err=True)
            sys.exit(130)
        except Exception as e:
            from effprof.cli.output import Interrupted

            if isinstance(e, Interrupted):
                echo(terminal(e), err=True)
                sys.exit(130)
            raise
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            _quiet_broken_pipe()
        sys.exit(rv if isinstance(rv, int) else 0)


# What each option's value looks like, in --help: words a user reads, not Python types (<list[str]>, <float range>).
METAVARS = {
    "names": "NAME", "name": "NAME", "results": "RESULTS.jsonl", "inputs": "RESULTS.jsonl", "file": "CHECKS.toml", "target": "PLUGIN",
    "vary": "KEY=V1,V2,...", "param": "KEY=VALUE", "module": "PKG.MOD:FACTORY", "claim": "METRIC:AXIS=EXPONENT", "mode": "MODE",
    "plugin": "PKG.MOD:ATTR", "output": "PATH", "baseline": "RESULTS.jsonl|NAME", "latex": "FILE.tex", "csv": "FILE.csv",
    "figures": "DIR", "junit": "FILE.xml", "family": "FAMILY", "depth": "N", "threads": "N", "seq_len": "N", "d_model": "N",
    "batch": "N", "max_time": "SECONDS", "timeout": "SECONDS", "max_memory": "SIZE", "executor": "local|process|ray",
    "address": "ADDRESS", "device": "cpu|cuda|cuda:N", "dtype": "float32|bfloat16|float16", "plotlyjs": "inline|cdn|directory",
    "figure_size": "single|double", "tables": "WHICH", "hardware": "NAME", "hardware_file": "FILE.toml", "label": 'NAME="TEXT"',
}


def _readable_metavars(group) -> None:
    """Give every argument and option a metavar that reads as a word (set once, before --help is drawn)."""
    commands = [group, *getattr(group, "commands", {}).values()]
    for command in commands:
        for param in command.params:
            if param.metavar is None and param.name in METAVARS and not getattr(param, "is_flag", False):
                param.metavar = METAVARS[param.name]
            if param.param_type_name == "argument":  # typer prints an argument's Python type beside it: the name says it
                param.display_type_rich = lambda ctx=None: None


def _quiet_broken_pipe() -> None:
    """The reader of our output went away (`effprof explain X | head`): not an error, exit 0 quietly."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())  # Python's own flush at exit must not fail again
    sys.exit(0)


app = typer.Typer(
    cls=EffprofGroup,
    help="Profile efficient sequence-model mechanisms: FLOPs, time, memory, scaling exponents, reports.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion in --help; values complete (effprof.cli.complete)
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)



def _print_version(value: bool) -> None:
    if value:
        from effprof.version import __version__

        echo(f"effprof {__version__}")
        raise typer.Exit()


@app.callback()
def _load_plugins(
    plugin: list[str] = typer.Option(None, "--plugin", help="load mechanisms from module:attr or an effprof.mechanisms entry point (repeatable)"),
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True, help="print effprof's version and exit"),
) -> None:
    """--plugin X: the user named it, so every command loads it. [tool.effprof] plugins of ./pyproject.toml are
    not loaded here: only the commands that build mechanisms load them (plugins.load_project_plugins)."""
    from effprof.contract import validate as contract_validate
    from effprof.plugins import load_plugin

    for target in plugin or []:
        load_plugin(target, check=contract_validate)


from effprof.cli import analyse, check, inspect, measure, validate  # noqa: E402,F401  (register the commands)


def main() -> None:
    app()


from effprof.cli import course  # noqa: E402,F401  (effprof course: the roadmap's labs)
