"""Near misses: "did you mean" for a name, key, dtype, mode, metric or target that is almost one accepted.

`accepted(word, choices)` is the tail of every "not accepted" error line: with a close match (difflib's ratio
≥ 0.6), the suggestion instead of a long list (25 mechanisms, 43 keys: `effprof list` lists them all), beside a
short one (3 modes, 6 metrics); without a match, the list. `one_line(error)` is the text of an exception as the
one line every error message quotes it in. No dependencies: config, registry and the commands all use it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

CUTOFF = 0.6  # difflib's default: 'seq_lenn' -> 'seq_len', 'sofmax_attention' -> 'softmax_attention'
SHORT_LIST = 8  # a list this short is shown beside the suggestion (modes, metrics); a longer one only on a miss


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The accepted choice most like `word`, or None when none is close (a typo, not another word)."""
    choices = [str(c) for c in choices]
    match = difflib.get_close_matches(str(word), choices, n=1, cutoff=CUTOFF)
    if not match:  # case and separators alone: 'Flops', 'seq-len'
        folded = {c.lower().replace("-", "_"): c for c in choices}
        match = [folded[k] for k in (str(word).lower().replace("-", "_"),) if k in folded]
    return match[0] if match else None


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """' (did you mean 'x'?)' or ''."""
    match = closest(word, choices)
    return f" (did you mean {match!r}?)" if match else ""


def accepted(word: str, choices: Iterable[str], listing: str = "") -> str:
    """'; did you mean 'x'? (all: <listing>)' for a near miss, else '; accepted: a, b, c'."""
    choices = list(choices)
    match = closest(word, choices)
    if match and len(choices) > SHORT_LIST:
        return f"; did you mean {match!r}?" + (f" (all {len(choices)}: {listing})" if listing else "")
    return (f"; did you mean {match!r}?" if match else "") + f"; accepted: {', '.join(map(str, choices))}"


def one_line(error: BaseException | str, limit: int = 300) -> str:
    """An exception's text (or any text) on one line, whitespace runs collapsed, at most `limit` characters: how every
    one-line error quotes what user code, a file or a library raised."""
    return " ".join(str(error).split())[:limit]
