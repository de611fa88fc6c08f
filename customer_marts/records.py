"""Count a CSV file's records without DuckDB, in one streaming pass of bounded memory.

Ingestion checks every file's rows read against this count, so that a record the
CSV reader skipped or merged cannot vanish silently, and it finds the records too
long to be read (DuckDB 2.0 drops a record of 32 MiB or more without a reject).

A record ends at a line break outside `"` quotes (a doubled quote inside a quoted
field flips the parity twice, so counting quotes is enough). Blank lines are not
records (DuckDB skips them). The header is the first record. Memory is one chunk
of RECORD_LIMIT units, whatever the file holds.
"""

from __future__ import annotations

import gzip
import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

# A record longer than this (bytes; characters for UTF-16) is quarantined unread.
RECORD_LIMIT = 1 << 20
# Files in these encodings are counted as bytes (their quotes and line breaks are ASCII).
BYTE_ENCODINGS = ("utf-8", "latin-1")
# A line break followed (after carriage returns) by another: the second ends a blank
# line. Files whose lines end with a bare carriage return (old Mac style) count "\r".
BLANK_LINE = {
    ("\n", bytes): re.compile(rb"\n\r*(?=\n)"),
    ("\n", str): re.compile(r"\n\r*(?=\n)"),
    ("\r", bytes): re.compile(rb"\r(?=\r)"),
    ("\r", str): re.compile(r"\r(?=\r)"),
}


@dataclass(frozen=True)
class LongRecord:
    start: int  # offset of its first unit
    end: int  # offset after its line break (or the end of the file)
    line: int  # its first line (the header is line 1)
    breaks: int  # line breaks inside it (its own terminator excluded)
    terminated: bool  # ends with a line break

    @property
    def size(self) -> int:
        return self.end - self.start


@dataclass
class RecordCount:
    records: int = 0  # records after the header
    long: list[LongRecord] = field(default_factory=list)


@contextmanager
def open_units(path: Path, compressed: bool, encoding: str) -> Iterator[IO]:
    """The file's content as bytes (ASCII-compatible encodings) or text (UTF-16)."""
    raw = gzip.open(path, "rb") if compressed else path.open("rb")
    try:
        if encoding in BYTE_ENCODINGS:
            yield raw
        else:
            yield io.TextIOWrapper(raw, encoding=encoding, newline="")
    finally:
        raw.close()


def count_records(handle: IO, newline: str = "\n") -> RecordCount:
    """Records (after the header) and the records longer than RECORD_LIMIT; `newline`
    is "\n" (LF or CRLF files) or "\r" (files with bare carriage returns)."""
    sample = handle.read(0)
    blank_after = BLANK_LINE[newline, type(sample)]
    nl, quote, cr = newline, '"', "\r"
    if isinstance(sample, bytes):
        nl, quote, cr = nl.encode(), quote.encode(), cr.encode()
    result = RecordCount()
    records = 0
    in_quote = False
    offset = 0  # of the chunk
    breaks = 0  # line breaks before the chunk
    start, start_line = 0, 1  # the open record
    empty = True  # the open record holds nothing but carriage returns so far
    while chunk := handle.read(RECORD_LIMIT):
        pieces = chunk.split(quote)
        outside_first = 1 if in_quote else 0
        outside = quote.join(pieces[outside_first::2])
        ends = outside.count(nl)
        if ends:
            first, last = _first_and_last_break(pieces, outside_first, nl)
            # The open record ends at the chunk's first line break outside quotes.
            lead = chunk[:first]
            if empty and quote not in lead and not lead.strip(cr):
                ends -= 1  # a blank line
            elif first + offset + 1 - start > RECORD_LIMIT:
                result.long.append(
                    LongRecord(
                        start,
                        offset + first + 1,
                        start_line,
                        breaks + lead.count(nl) - (start_line - 1),
                        terminated=True,
                    )
                )
            # Records between the first and the last break are shorter than a chunk.
            ends -= len(blank_after.findall(outside))
            records += ends
            start = offset + last + 1
            start_line = breaks + chunk.count(nl, 0, last + 1) + 1
            tail = chunk[last + 1 :]
            empty = quote not in tail and not tail.strip(cr)
        else:
            empty = empty and len(pieces) == 1 and not in_quote and not chunk.strip(cr)
        in_quote ^= (len(pieces) - 1) % 2 == 1
        offset += len(chunk)
        breaks += chunk.count(nl)
    if not empty:  # a last record without a line break
        records += 1
        if offset - start > RECORD_LIMIT:
            result.long.append(
                LongRecord(start, offset, start_line, breaks - (start_line - 1), terminated=False)
            )
    result.records = max(records - 1, 0)
    return result


def _first_and_last_break(pieces: list, outside_first: int, nl) -> tuple[int, int]:
    """Offsets in the chunk of its first and last line break outside quotes."""
    first = last = -1
    position = 0
    for index, piece in enumerate(pieces):
        if index % 2 == outside_first and (found := piece.find(nl)) >= 0:
            first = position + found
            break
        position += len(piece) + 1
    position = sum(len(piece) for piece in pieces) + len(pieces) - 1
    for index in range(len(pieces) - 1, -1, -1):
        piece = pieces[index]
        position -= len(piece)
        if index % 2 == outside_first and (found := piece.rfind(nl)) >= 0:
            last = position + found
            break
        position -= 1
    return first, last


def write_without_long_records(handle: IO, target: IO, long: list[LongRecord], placeholder) -> None:
    """Copy the file, each long record replaced by `placeholder(record)` (one short line)."""
    position = 0
    for record in long:
        _copy(handle, target, record.start - position)
        target.write(placeholder(record))
        _skip(handle, record.end - record.start)
        position = record.end
    while block := handle.read(RECORD_LIMIT):
        target.write(block)


def _copy(handle: IO, target: IO, count: int) -> None:
    while count > 0:
        block = handle.read(min(count, RECORD_LIMIT))
        if not block:
            return
        target.write(block)
        count -= len(block)


def _skip(handle: IO, count: int) -> None:
    while count > 0:
        block = handle.read(min(count, RECORD_LIMIT))
        if not block:
            return
        count -= len(block)
