"""What a session file (R.session.json) may hold: `session_problem(data)` says why parsed JSON is not a
session this effprof can use, or None (no torch, no pandas).

A session file is read as records are (records.validate_record): anyone can craft one, so nothing built
from it may fail later with a traceback or carry markup into a page. Every part is checked for the types
its readers rely on — records through validate_record; fits, crossovers, complexity and baseline rows as
flat tables of text, numbers, booleans and number lists with the keys the renderers index typed; the
attention patterns as coordinate data (a name, 1 ≤ n ≤ MAX_PATTERN_N, rows and cols as equal-length lists
of positions in [0, n), pairs and density consistent with them) and nothing else (a stored `div` of markup
is refused); noise, axis, title, command and the source hash typed. `effprof report` skips a bad session
with a warning and rebuilds it from the records.
"""

from __future__ import annotations

import re
from typing import Any

from effprof.store.records import is_number, upgrade, validate_record

MAX_PATTERN_N = 32768  # = effprof.mechanisms.sparse.pattern.MAX_SEQ_LEN (tests/test_session.py checks it)
SHA256 = re.compile(r"[0-9a-f]{64}")
SAFE_NAME = re.compile(r"[^/\\\x00-\x1f.][^/\\\x00-\x1f]{0,254}")  # a file name in the session's folder: no path, no dotfile
PATTERN_KEYS = frozenset({"name", "config", "n", "rows", "cols", "pairs", "density", "causal"})
LISTS = ("records", "fits", "crossovers", "complexity")

# Keys each row type must carry with a type: "text", "number" (finite, or null where "number?"), "bool", "int".
ROW_KEYS: dict[str, dict[str, str]] = {
    "fits": {"mechanism": "text", "mode": "text", "metric": "text", "axis": "text", "verdict": "text?", "exponent": "number?"},
    "crossovers": {"mode": "text", "metric": "text", "axis": "text", "a": "text", "b": "text", "at": "number?",
                   "cheaper_below": "text?", "cheaper_above": "text?", "uncertain": "bool"},
    "complexity": {"mechanism": "text"},
    "module_fits": {"mechanism": "text", "mode": "text", "path": "text", "module": "text", "metric": "text", "axis": "text",
                    "exponent": "number?"},
    "baseline": {"mechanism": "text", "mode": "text", "point": "text", "metric": "text", "old": "number", "new": "number",
                 "ratio": "number", "noise_band": "number", "change": "text", "noisy": "bool"},
}
NOISE_KEYS = {"threshold": "number?", "timed": "int", "noisy": "int", "busy": "int", "max_load": "number?", "cpu_count": "int?"}


def session_problem(data: Any, version: int) -> str | None:
    """Why `data` (a parsed session file) cannot be used, or None. Records of schema 1 are accepted (load upgrades them)."""
    if not isinstance(data, dict):
        return "is not a JSON object"
    if data.get("session") != version:
        return f"is not an effprof session of version {version}"
    records_in = data.get("records_in")
    if records_in is not None:  # the records stay in the results file beside the session, bound by its hash
        if "records" in data:
            return "has both records and records_in"
        if not isinstance(records_in, str) or not SAFE_NAME.fullmatch(records_in) or data.get("source_sha256") is None:
            return f"has records_in {_shown(records_in)}, not the name of a results file beside it with its source_sha256"
        data = {**data, "records": []}
    for name in LISTS:
        if not isinstance(data.get(name), list):
            return f"has {name} {_shown(data.get(name))}, not a list"
    for name in ("baseline", "patterns", "module_fits"):
        if data.get(name) is not None and not isinstance(data[name], list):
            return f"has {name} {_shown(data[name])}, not a list"
    for name in ("title", "command"):
        if not isinstance(data.get(name, ""), str):
            return f"has {name} {_shown(data[name])}, not text"
    if data.get("axis") is not None and not isinstance(data["axis"], str):
        return f"has axis {_shown(data['axis'])}, not text"
    source = data.get("source_sha256")
    if source is not None and not (isinstance(source, str) and SHA256.fullmatch(source)):
        return f"has source_sha256 {_shown(source)}, not a SHA-256 in hex"
    for number, record in enumerate(data["records"], start=1):
        try:
            reason = validate_record(upgrade(record)) if isinstance(record, dict) else "not a JSON object"
        except ValueError as e:  # ResultsError: a schema this effprof does not read
            reason = str(e)
        if reason is not None:
            return f"has a record (number {number}) whose {reason}"
    for name, keys in ROW_KEYS.items():
        for number, row in enumerate(data.get(name) or [], start=1):
            if (reason := _row_problem(row, keys)) is not None:
                return f"has a {name} row (number {number}) whose {reason}"
    noise = data.get("noise", {})
    if not isinstance(noise, dict) or (reason := _row_problem(noise, {k: t + "?" * (not t.endswith("?")) for k, t in NOISE_KEYS.items()})):
        return f"has noise {_shown(noise)}, not a noise summary" if not isinstance(noise, dict) else f"has noise whose {reason}"
    for number, pattern in enumerate(data.get("patterns") or [], start=1):
        if (reason := pattern_problem(pattern)) is not None:
            return f"has an attention pattern (number {number}) whose {reason}"
    return None


def pattern_problem(pattern: Any) -> str | None:
    """Why `pattern` is not attention-pattern data (effprof.mechanisms.sparse.pattern.pattern_data), or None."""
    if not isinstance(pattern, dict):
        return "is not a JSON object"
    if extra := sorted(set(pattern) - PATTERN_KEYS):
        return f"key {extra[0]!r} is not pattern data (a session holds data, never markup)"
    if not isinstance(pattern.get("name"), str) or not pattern["name"]:
        return f"name is {_shown(pattern.get('name'))}, not a name"
    n = pattern.get("n")
    if not _int(n) or not 1 <= n <= MAX_PATTERN_N:
        return f"n is {_shown(n)}, not a sequence length from 1 to {MAX_PATTERN_N}"
    rows, cols = pattern.get("rows"), pattern.get("cols")
    if not isinstance(rows, list) or not isinstance(cols, list) or len(rows) != len(cols):
        return "rows and cols are not two lists of one length"
    if len(rows) > n * n or not all(_int(v) and 0 <= v < n for v in rows) or not all(_int(v) and 0 <= v < n for v in cols):
        return f"rows or cols hold a value that is not a position from 0 to {n - 1}"
    if pattern.get("pairs") != len(rows) or not _int(pattern.get("pairs")):
        return f"pairs is {_shown(pattern.get('pairs'))}, not the {len(rows)} coordinates it holds"
    density = pattern.get("density")
    if not is_number(density) or not 0 <= density <= 1:
        return f"density is {_shown(density)}, not a fraction"
    if not isinstance(pattern.get("causal", True), bool):
        return f"causal is {_shown(pattern['causal'])}, not true or false"
    config = pattern.get("config", {})
    if not isinstance(config, dict) or not all(_scalar(v) for v in config.values()):
        return f"config is {_shown(config)}, not a table of config values"
    return None


def _row_problem(row: Any, keys: dict[str, str]) -> str | None:
    if not isinstance(row, dict):
        return "is not a JSON object"
    for key, kind in keys.items():
        optional, kind = kind.endswith("?"), kind.rstrip("?")
        value = row.get(key)
        if value is None and optional:
            continue
        ok = {"text": isinstance(value, str), "number": is_number(value), "bool": isinstance(value, bool), "int": _int(value)}[kind]
        if not ok:
            return f"{key} is {_shown(value)}, not {'a ' if kind != 'text' else ''}{kind}"
    for key, value in row.items():
        if key == "config":  # a series' structured key (fit rows): config keys to plain values
            if not (isinstance(value, dict) and all(isinstance(k, str) and _scalar(v) for k, v in value.items())):
                return f"config is {_shown(value)}, not a table of config keys to text or numbers"
            continue
        if not (_scalar(value) or (isinstance(value, list) and all(_scalar(v) for v in value))):
            return f"{key} is {_shown(value)}, not text, a number or a list of them"
    return None


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and is_number(value)


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, bool)) or is_number(value)


def _shown(value: Any) -> str:
    import json

    try:
        text = json.dumps(value, default=str)
    except (ValueError, RecursionError):
        text = type(value).__name__
    return text if len(text) <= 40 else text[:37] + "..."
