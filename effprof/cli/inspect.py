"""effprof list, effprof explain: what is registered and what each mechanism computes."""

from __future__ import annotations

import inspect as pyinspect
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from effprof.cli import BadInput, app, complete
from effprof.cli.options import JsonOpt, ParamOpt
from effprof.cli.output import check_output_file, err, out, print_json, say
from effprof.render.escape import plain


@app.command("list")
def list_command(
    family: Annotated[str | None, typer.Option("--family", "-f", help="only this family")] = None,
    keys: Annotated[bool, typer.Option("--keys", help="also list every config key with its meaning")] = False,
    json_: JsonOpt = False,
) -> None:
    """List the registered mechanisms (and, with --keys, the config keys)."""
    from effprof.config import KEYS, RUN_DEFAULTS
    from effprof.plugins import BUILDING_COMMANDS, configured_plugins
    from effprof.registry import families, get_spec, list_mechanisms

    if family is not None and family not in families():
        raise BadInput(f"--family {family!r} is not a family; accepted: {', '.join(families())}")
    specs = [get_spec(n) for n in list_mechanisms(family)]
    if project := configured_plugins():  # read, never imported here
        err.print(plain(f"note: ./pyproject.toml names plugins ({', '.join(project)}), loaded only by {', '.join(BUILDING_COMMANDS)}; "
                        f"to list them: effprof list --plugin {project[0]}"), soft_wrap=True)
    key_rows = [{"name": info.name, "type": info.type.__name__, "default": RUN_DEFAULTS.get(info.name), "meaning": info.doc}
                for info in KEYS.values()]
    if json_:
        mechanisms = [s.summary_dict() for s in specs]
        print_json({"mechanisms": mechanisms, "keys": key_rows} if keys else mechanisms)
        return
    table = Table(title="registered mechanisms", title_justify="left")
    for column in ("name", "family", "causal", "impls", "paper", "summary"):
        table.add_column(column)
    for s in specs:
        table.add_row(plain(s.name), plain(s.family), "yes" if s.causal else "no", plain(", ".join(map(str, _default_first(s))) or "–"),
                      plain(f"{paper_title(s.paper.title)} ({s.paper.year})"), plain(s.summary))
    out.print(table)
    if keys:
        key_table = Table(title="config keys (--param key=value, --vary key=v1,v2)", title_justify="left")
        for column in ("key", "type", "default", "meaning"):
            key_table.add_column(column)
        for row in key_rows:
            default = "per mechanism" if row["default"] is None else str(row["default"])
            key_table.add_row(plain(row["name"]), plain(row["type"]), plain(default), plain(row["meaning"]))
        out.print(key_table)


TITLE_WIDTH = 40  # characters of a paper's title in the list; the whole title is in `effprof explain`


def paper_title(title: str, width: int = TITLE_WIDTH) -> str:
    """A title cut at a word with an ellipsis ("Simple linear attention language models balance…"), never mid-word."""
    title = " ".join(str(title).split())
    if len(title) <= width:
        return title
    head = title[: width].rpartition(" ")[0].rstrip(" :,;-–")  # the words that fit whole, beside the ellipsis
    return (head or title[: width - 1]) + "…"  # one word longer than the width: cut it, marked


def _multiline(text: str) -> Text:
    """Text of several lines (a spec's equations), each stripped of control characters, never parsed as markup."""
    return Text("\n".join(plain(line).plain for line in str(text).splitlines()))


def _default_first(spec) -> list[str]:
    """The impls with the default form first, as the README's table lists them."""
    default = spec.defaults.get("impl")
    return sorted(spec.impls, key=lambda impl: impl != default)


@app.command("explain")
def explain_command(
    name: Annotated[str, typer.Argument(help="a registered mechanism", autocompletion=complete.mechanisms)],
    results: Annotated[Path | None, typer.Option(
        "--results", help="a results file (JSON Lines): its measured exponents and verdicts beside the claims")] = None,
    json_: JsonOpt = False,
) -> None:
    """Equations, config, cost model at the defaults, and claims of one mechanism (with --results: beside what was measured)."""
    from effprof.config import resolve_config
    from effprof.registry import forms_note, get_spec
    from effprof.store.metrics import human

    spec = get_spec(name)
    config = resolve_config(spec, {})
    costs = {mode: spec.cost(config, mode) for mode in spec.modes}
    from effprof import kernels

    built = {kernel: kernels.status(kernel) for kernel in spec.kernels}
    measured = _measured_claims(spec, results) if results is not None else None
    forms = forms_note(spec, config)
    if json_:
        data = {**spec.summary_dict(), "config": config, "kernel_status": built, "forms": forms,
                "cost": {m: {"flops": c.flops, "state_bytes": c.state_bytes} for m, c in costs.items()}}
        print_json({**data, "measured": measured} if measured is not None else data)
        return
    module = pyinspect.getmodule(spec.builder)
    out.print(Text.assemble(plain(spec.name, "bold"), " — ", plain(spec.summary)))
    out.print(plain(f"{spec.paper.title} ({spec.paper.year}), arXiv:{spec.paper.arxiv}"))
    out.print()
    out.print(_multiline(spec.equations or pyinspect.cleandoc(module.__doc__ or "")))
    table = Table(title="config at the defaults", title_justify="left")
    table.add_column("key")
    table.add_column("value")
    table.add_column("accepted")
    for key, value in config.items():
        table.add_row(plain(key), plain(value), plain(", ".join(map(str, spec.choices.get(key, ())))))
    out.print(table)
    cost_table = Table(title="analytic cost at the defaults", title_justify="left")
    for column in ("mode", "FLOPs", "decode state"):
        cost_table.add_column(column)
    for mode, c in costs.items():
        cost_table.add_row(plain(mode + (" (per token)" if mode == "decode" else "")), human(c.flops, "flops"), human(c.state_bytes, "bytes"))
    out.print(cost_table)
    claims = Table(title="claims", title_justify="left")
    for column in ("metric", "∝ axis^exponent", "mode", "where", "note"):
        claims.add_column(column, overflow="fold")
    for c in spec.claims:
        log = f" · log({c.axis})^{c.log_power:g}" if c.log_power else ""
        claims.add_row(plain(c.metric), plain(f"{c.axis}^{c.exponent:g}{log}"), plain(c.mode),
                       plain(", ".join(f"{k}={v}" for k, v in (c.where or {}).items())), plain(c.note))
    out.print(claims)
    out.print(Text.assemble(plain("forms", "bold"), ": ", plain(forms)))
    for kernel, status in built.items():
        out.print(Text.assemble("compiled kernel ", plain(kernel, "bold"), ": ", plain(status)))
    if measured is not None:
        from effprof.render.claims import claims_table

        out.print(claims_table(measured, str(results)))


def _measured_claims(spec, results: Path) -> list[dict]:
    """The spec's claims paired with the fits of `results` (effprof.render.claims); refuses a file without the mechanism."""
    from effprof.analyse.session import scaling_fits
    from effprof.cli.output import load_results
    from effprof.render.claims import claims_beside_fits
    from effprof.store.records import json_ready

    frame = load_results(results)
    if "mechanism" not in frame.columns or spec.name not in set(frame["mechanism"]):
        names = sorted(set(frame["mechanism"])) if "mechanism" in frame.columns else []
        raise BadInput(f"--results {str(results)!r} holds no record of {spec.name!r}; it holds: {', '.join(names) or 'none'}")
    frame = frame[frame["mechanism"] == spec.name]
    fits = scaling_fits(frame)
    return json_ready(claims_beside_fits(spec, fits.to_dict("records")))


@app.command("patterns")
def patterns_command(
    name: Annotated[str, typer.Argument(help="a sparse mechanism (see effprof list --family sparse)")],
    output: Annotated[Path, typer.Option("--output", "-o", help="HTML file to write")],
    param: ParamOpt = None,
    seq_len: Annotated[str | None, typer.Option("--seq-len", help="tokens (at most 32768); default 256")] = None,
) -> None:
    """Render a sparse mechanism's attention pattern (which keys each query attends) as a heatmap with its density."""
    from effprof.cli.options import parse_params
    from effprof.contract import validate
    from effprof.mechanisms.sparse.pattern import pattern_data
    from effprof.plugins import load_project_plugins
    from effprof.render.patterns import write_pattern_html

    load_project_plugins(say, check=validate)
    if output.suffix.lower() not in (".html", ".htm"):
        raise BadInput(f"--output {str(output)!r} must end in .html")
    check_output_file(output, "--output")
    config = parse_params(param)
    config["seq_len"] = seq_len or config.get("seq_len", "256")
    data = pattern_data(name, **config)
    path = write_pattern_html(data, str(output))
    out.print(plain(f"{name}: {data['pairs']} (query, key) pairs at n={data['n']}, density {data['density']:.4f} of the causal triangle"))
    out.print(plain(f"pattern: {path}"))
