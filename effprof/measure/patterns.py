"""Attention-pattern data of the sparse mechanisms among some records, measured beside them.

The pattern of a sparse mechanism (which keys each query attends) comes from building it, so it
needs torch; `effprof compare` measures it here, at PATTERN_SEQ_LEN, and the Session keeps it as
plain data (coordinate lists), so `effprof report` draws the heatmaps from a saved session
without torch.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

PATTERN_SEQ_LEN = 256


def sparse_patterns(records: Iterable[dict[str, Any]], seq_len: int = PATTERN_SEQ_LEN) -> list[dict[str, Any]]:
    """pattern_data (rows and cols as lists of ints) of each registered sparse mechanism in `records`."""
    from effprof.mechanisms.sparse.pattern import pattern_data
    from effprof.registry import list_mechanisms

    registered = set(list_mechanisms())
    names = dict.fromkeys(r["mechanism"] for r in records if r.get("family") == "sparse")
    patterns = []
    for name in names:
        if name not in registered:
            continue  # results from a plugin or another effprof version
        data = pattern_data(name, seq_len=seq_len)
        patterns.append({**data, "rows": [int(v) for v in data["rows"]], "cols": [int(v) for v in data["cols"]]})
    return patterns
