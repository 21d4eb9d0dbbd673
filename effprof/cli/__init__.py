"""The `effprof` command line: one module per command group, no logic here.

Every bad input ends with exit code 2 and one line naming the bad value and what
is accepted, never a traceback; a failed check exits 1.
"""

from __future__ import annotations

import sys

import click
import typer
from typer.core import TyperGroup

from effprof.config import ConfigError


# typer vendors its own click: catch the usage errors of both
USAGE_ERRORS = tuple({click.UsageError, *(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")})
ABORTS = tuple({click.Abort, typer.Abort})


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
        from effprof.records import ResultsError

        args = hoist_plugins(sys.argv[1:] if args is None else list(args))
        try:
            rv = super().main(args=args, prog_name=prog_name, complete_var=complete_var, standalone_mode=False, **extra)
        except USAGE_ERRORS as e:
            if type(e).__name__ == "NoArgsIsHelpError":
                click.echo(e.ctx.get_help() if e.ctx else str(e))
                sys.exit(2)
            message = " ".join(e.format_message().split())
            command = e.ctx.command_path if e.ctx else "effprof"
            click.echo(f"error: {message} (see '{command} --help')", err=True)
            sys.exit(2)
        except (ConfigError, BadInput, ResultsError) as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(2)
        except OSError as e:
            click.echo(f"error: {e.filename or ''}: {e.strerror or e}", err=True)
            sys.exit(2)
        except ABORTS:
            click.echo("interrupted", err=True)
            sys.exit(130)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)
        except Exception as e:
            from effprof.cli.output import Interrupted

            if isinstance(e, Interrupted):
                click.echo(str(e), err=True)
                sys.exit(130)
            raise
        sys.exit(rv if isinstance(rv, int) else 0)


app = typer.Typer(
    cls=EffprofGroup,
    help="Profile efficient sequence-model mechanisms: FLOPs, time, memory, scaling exponents, reports.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)



@app.callback()
def _load_plugins(
    plugin: list[str] = typer.Option(None, "--plugin", help="load mechanisms from module:attr or an effprof.mechanisms entry point (repeatable)"),
) -> None:
    from effprof.plugins import configured_plugins, load_plugin

    for target in [*configured_plugins(), *(plugin or [])]:  # [tool.effprof] plugins of ./pyproject.toml first
        load_plugin(target)


from effprof.cli import analyse, check, inspect, measure, validate  # noqa: E402,F401  (register the commands)


def main() -> None:
    app()
