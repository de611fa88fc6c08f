"""SQL text helpers shared by the ingest modules: quoting, literal paths, e-mail masking."""

from __future__ import annotations

import re
from pathlib import Path

from customer_marts.ingest.contract import EMAIL_PATTERN


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def path_literal(path: Path) -> str:
    """A path as DuckDB's file readers take it literally: their glob characters
    (`*`, `?`, `[`) each escaped as a one-character class."""
    return literal(re.sub(r"([*?\[])", r"[\1]", str(path)))


def mask_emails(text: str) -> str:
    """SQL: `text` with every e-mail address replaced by <email>."""
    return f"regexp_replace({text}, {literal(EMAIL_PATTERN)}, '<email>', 'g')"


def reader_error(exc: Exception) -> str:
    """The first line of a reader's error (DuckDB quotes the record on later lines)."""
    return str(exc).strip().splitlines()[0][:300]


def names_list(names: tuple[str, ...] | list[str]) -> str:
    """Quoted column names, comma-separated (a key's columns, for PARTITION BY)."""
    return ", ".join(quote(name) for name in names)


def key_in(names: tuple[str, ...], outer: str, keys: str) -> str:
    """SQL condition: the row `outer` has a key (the columns `names`) that the query
    `keys` returns. NULL matches NULL, so an optional key column (a spend row
    without campaign) still identifies its row. (DuckDB plans it as a hash semi join,
    as fast as IN for a one-column key.)"""
    match = " and ".join(
        f"{outer}.{quote(name)} is not distinct from keys.{quote(name)}" for name in names
    )
    return f"exists (select 1 from ({keys}) as keys where {match})"
