"""Line numbers of tables and keys in a TOML text, for messages that point at the bad line."""

from __future__ import annotations

import re


class Locator:
    """Line numbers of tables and keys in a TOML text (tomllib keeps none).

    The Nth claims entry starts at the Nth [[<prefix>.claims]] header; its keys are the
    `key =` lines up to the next header, or a [<prefix>.claims.key] sub-table before the
    next entry. Inline forms (claims = [{...}]) fall back to the line of `claims`.
    """

    HEADER = re.compile(r"^\s*(\[\[?)([^\]]+)\]")

    def __init__(self, text: str, prefix: str):
        self.lines = text.splitlines()
        self.prefix = prefix
        self.claims = f"{prefix}.claims" if prefix else "claims"
        self.headers = [(i, re.sub(r"[\s\"']", "", m.group(2)), m.group(1) == "[[")
                        for i, line in enumerate(self.lines) if (m := self.HEADER.match(line))]
        self.entries = [i for i, name, array in self.headers if array and name == self.claims]

    def _next_header(self, after: int) -> int:
        return next((i for i, _, _ in self.headers if i > after), len(self.lines))

    def _assignment(self, key: str, start: int) -> int | None:
        """The `key = ...` (or dotted `key.x = ...`) line between `start` and the next header."""
        pattern = re.compile(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*[.=]")
        return next((i for i in range(start, self._next_header(start - 1)) if pattern.match(self.lines[i])), None)

    def _table(self, name: str, start: int = 0, end: int | None = None) -> int | None:
        end = len(self.lines) if end is None else end
        return next((i for i, header, _ in self.headers if header == name and start <= i < end), None)

    def section_key(self, key: str, subkey: str | None = None) -> int:
        """Line (1-based) of a key of the check section, or of a key inside that key's table."""
        table = self.prefix
        own = self._table(table) if table else -1
        found = self._assignment(key, own + 1) if own is not None else None
        if found is None:
            found = self._table(f"{table}.{key}" if table else key)
            if found is not None and subkey is not None:
                found = self._assignment(subkey, found + 1) or found
        if found is None:
            found = next((i for i, name, _ in self.headers if name == table or name.startswith(table + ".")), 0) if table else 0
        return found + 1

    def entry(self, index: int) -> int:
        if index < len(self.entries):
            return self.entries[index] + 1
        return self.section_key("claims")

    def key(self, index: int, key: str) -> int:
        if index >= len(self.entries):
            return self.entry(index)
        start = self.entries[index]
        end = self.entries[index + 1] if index + 1 < len(self.entries) else len(self.lines)
        found = self._assignment(key, start + 1)
        if found is None:
            found = self._table(f"{self.claims}.{key}", start, end)
        return (found if found is not None else start) + 1


