"""Labels for papers: `--label NAME="text"` renames a series wherever a report shows it (figures, tables, LaTeX,
CSV, HTML, the console), and variants read as words by default (frames.add_labels: impl=recurrent -> recurrent).

NAME is what the results call a series:

    a mechanism or module target   softmax_attention="Softmax (sdpa)"   mylayers:build_gated_conv="Gated conv (ours)"
    a variant, KEY=VALUE           impl=recurrent="sequential scan"

Labels apply to the records before they are analysed (`apply`): the mechanism field (and a labelled variant's
value) read as the label, the name measured stays beside it in `name`, so every renderer shows the same words
and nothing downstream has a second naming rule. The saved results and sessions keep the names measured.
A NAME that names nothing in the results is refused (one line), as is an empty or overlong text; the text is
data to every renderer and is escaped there like any other.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from effprof.config import KEYS, ConfigError

MAX_LABEL = 80  # characters: a legend entry, not a caption


class LabelError(ConfigError):
    """A --label that cannot be applied: the message names it and what is accepted."""


def parse_labels(items: Iterable[str] | None, flag: str = "--label") -> dict[str, str]:
    """['softmax_attention=Softmax (sdpa)', 'impl=recurrent=scan'] -> {name: text}; LabelError names a bad one."""
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, rest = str(item).partition("=")
        if sep and key.strip() in KEYS and "=" in rest:  # KEY=VALUE="text": a variant
            value, _, text = rest.partition("=")
            name = f"{key.strip()}={value.strip()}"
        else:
            name, text = key.strip(), rest
        add_label(out, name, text if sep else "", flag, item)
    return out


def add_label(out: dict[str, str], name: str, text: Any, flag: str = "--label", item: Any = None) -> None:
    """Check one NAME -> text and add it to `out` (also for the labels table of a check file)."""
    shown = item if item is not None else f"{name}={text}"
    if not isinstance(text, str):
        raise LabelError(f"{flag} {shown!r}: the label must be text, e.g. softmax_attention=\"Softmax (sdpa)\"")
    text = text.strip().strip('"').strip("'").strip()
    if not name or not text:
        raise LabelError(f"{flag} {shown!r} is not NAME=\"text\"; e.g. softmax_attention=\"Softmax (sdpa)\" or impl=recurrent=\"scan\"")
    if len(text) > MAX_LABEL or any(ord(ch) < 32 or ord(ch) == 127 for ch in text):
        raise LabelError(f"{flag} {name!r}: a label is one line of at most {MAX_LABEL} characters")
    if name in out and out[name] != text:
        raise LabelError(f"{flag} {name!r} is given twice ({out[name]!r} and {text!r}); give it once")
    out[name] = text


def apply(records: Any, labels: dict[str, str], flag: str = "--label") -> Any:
    """Copies of `records` (a list of dicts, or a records DataFrame) with the labels applied: `mechanism` (and a
    labelled KEY=VALUE variant's value) reads as its label, the measured name kept in `name`. LabelError when a
    NAME matches nothing in the records."""
    if not labels:
        return records
    if hasattr(records, "to_dict"):  # a DataFrame: the same rule, column by column
        frame = records.copy()
        apply(frame.drop_duplicates(subset=[c for c in ("mechanism", *KEYS) if c in frame.columns])
              .to_dict("records"), labels, flag)  # only to refuse a NAME that matches nothing
        measured = frame["mechanism"].astype(str)
        frame["name"] = measured.where(measured.isin(list(labels)))
        frame["mechanism"] = measured.map(lambda m: labels.get(m, m))
        for key in (k for k in KEYS if k in frame.columns):
            frame[key] = frame[key].map(lambda v, key=key: labels.get(f"{key}={v}", v) if isinstance(v, str) else v)
        return frame
    names = list(dict.fromkeys(str(r.get("mechanism")) for r in records))
    variants = list(dict.fromkeys(f"{k}={r[k]}" for r in records for k in KEYS if k in r and isinstance(r[k], str)))
    for name in labels:
        if name not in names and name not in variants:
            from effprof.suggest import accepted

            raise LabelError(f"{flag} {name!r} names nothing in these results" + accepted(name, [*names, *variants]))
    out = []
    for record in records:
        record = dict(record)
        mechanism = str(record.get("mechanism"))
        if mechanism in labels:
            record["name"], record["mechanism"] = mechanism, labels[mechanism]
        for key in KEYS:
            value = record.get(key)
            if isinstance(value, str) and f"{key}={value}" in labels:
                record[key] = labels[f"{key}={value}"]
        out.append(record)
    return out


def apply_patterns(patterns: list[dict[str, Any]] | None, labels: dict[str, str]) -> list[dict[str, Any]] | None:
    """Attention-pattern panels named by their label where their mechanism has one."""
    if patterns is None or not labels:
        return patterns
    return [{**p, "name": labels.get(p.get("name"), p.get("name"))} for p in patterns]
