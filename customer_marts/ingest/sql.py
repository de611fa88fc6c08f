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
