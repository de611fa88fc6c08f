"""Count a CSV file's records without DuckDB, in one streaming pass of bounded memory.

Ingestion checks every file's rows read against this count, so that a record the
CSV reader skipped or merged cannot vanish silently, and it finds the records too
long to be read (DuckDB 2.0 drops a record of 32 MiB or more without a reject).

A record ends at a line break outside quoted fields, as DuckDB's reader sees them
(`count_records`). Blank lines are not records (DuckDB skips them), but they are
lines: the count says where they are, so that the lines after them keep their numbers.
The header is the first record. The count also says whether any quoted field holds a
line feed (a record spanning lines): the reader numbers lines exactly only then, or
when blank lines lie between records. Memory is
one chunk of RECORD_LIMIT units, whatever the file holds; the work is C-speed string
operations per chunk plus a step per `"`.
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
    quoted_line_feeds: int = 0  # "\n" inside quoted fields (records spanning lines)
    newline: str = "\n"  # the line break counted ("\r": a file of bare carriage returns)
    long: list[LongRecord] = field(default_factory=list)
    # (records before them, the header included; how many) for each run of blank lines
    blank_runs: list[tuple[int, int]] = field(default_factory=list)

    def add_blank(self, records_before: int) -> None:
        if self.blank_runs and self.blank_runs[-1][0] == records_before:
            self.blank_runs[-1] = (records_before, self.blank_runs[-1][1] + 1)
        else:
            self.blank_runs.append((records_before, 1))

    def blanks_between_records(self) -> list[tuple[int, int]]:
        """The blank runs followed by a record (those at the end shift no line)."""
        return [run for run in self.blank_runs if run[0] <= self.records]


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


def count_records(handle: IO, newline: str = "\n", delimiter: str = ",") -> RecordCount:
    """Records (after the header) and the records longer than RECORD_LIMIT; `newline`
    is "\n" (LF or CRLF files) or "\r" (files with bare carriage returns).

    As DuckDB reads them: a `"` opens a quoted field only at the start of a field
    (after the delimiter or a line break, or one space after one); inside one, `""`
    is a quote and the next single `"` closes it; any other `"` is an ordinary
    character. Where quoting is malformed beyond that, DuckDB's reader itself is
    unreliable: the counts then differ, and the file fails by name."""
    sample = handle.read(0)
    blank_after = BLANK_LINE[newline, type(sample)]
    nl, quote, cr, delim = newline, '"', "\r", delimiter
    if isinstance(sample, bytes):
        nl, quote, cr, delim = nl.encode(), quote.encode(), cr.encode(), delim.encode()
    openers = (delim, nl, cr)
    lf = "\n" if isinstance(sample, str) else b"\n"
    # a `"` followed by an ordinary character (searched forwards and, for one preceded
    # by one, backwards: a literal first character makes the search fast)
    specials = re.escape("".join(sorted({delimiter, newline, "\r", '"'})))
    stray = f'"[^{specials}]'
    stray = re.compile(stray.encode() if isinstance(sample, bytes) else stray)
    result = RecordCount(newline=newline)
    records = 0
    state = _QuoteState(inside=False, pending=False, before=nl + nl)
    offset = 0  # of the chunk
    breaks = 0  # line breaks before the chunk
    start, start_line = 0, 1  # the open record
    empty = True  # the open record holds nothing but carriage returns so far
    # A chunk ending with `"` is extended a little: whether it is doubled shows next.
    read_ahead = min(64, RECORD_LIMIT // 2)
    while chunk := handle.read(RECORD_LIMIT - read_ahead):
        while chunk.endswith(quote) and len(chunk) < RECORD_LIMIT and (more := handle.read(1)):
            chunk += more
        pieces = chunk.split(quote)
        outside_flags = state.scan(pieces, quote, openers, stray)
        if isinstance(outside_flags, int):  # by parity: every other piece
            outside = quote.join(pieces[outside_flags::2])
            outside_flags = _Parity(outside_flags)
        else:
            outside = quote.join(p for p, out in zip(pieces, outside_flags, strict=True) if out)
        ends = outside.count(nl)
        result.quoted_line_feeds += chunk.count(lf) - outside.count(lf)
        if ends:
            first, last = _first_and_last_break(pieces, outside_flags, nl, len(chunk))
            # The open record ends at the chunk's first line break outside quotes.
            lead = chunk[:first]
            lead_blank = empty and quote not in lead and not lead.strip(cr)
            if lead_blank:
                ends -= 1  # a blank line
                result.add_blank(records)
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
            # Each match is a break before a blank line: the breaks up to it end records,
            # but for those that ended the lead's and earlier matches' blank lines.
            seen, position = 0, 0
            for index, match in enumerate(blank_after.finditer(outside)):
                seen += outside.count(nl, position, match.start() + 1)
                position = match.start() + 1
                result.add_blank(records + seen - lead_blank - index)
                ends -= 1
            records += ends
            start = offset + last + 1
            start_line = breaks + chunk.count(nl, 0, last + 1) + 1
            tail = chunk[last + 1 :]
            empty = quote not in tail and not tail.strip(cr)
        else:
            empty = empty and len(pieces) == 1 and outside_flags[0] and not chunk.strip(cr)
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


@dataclass
class _QuoteState:
    inside: bool  # in a quoted field
    pending: bool  # inside, and the last chunk ended with a `"` that may be doubled
    before: object  # the last two characters seen

    def scan(self, pieces: list, quote, openers: tuple, stray: re.Pattern) -> list[bool] | int:
        """Whether each piece of a chunk split at `"` lies outside quoted fields: a flag
        per piece, or (by parity) the index of the first outside piece."""
        if not self.pending and len(pieces) > 1:
            flags = self.fast(pieces, quote, openers, stray)
            if flags is not None:
                return flags
        return self.slow(pieces, quote, openers)

    def fast(self, pieces: list, quote, openers: tuple, stray: re.Pattern) -> int | None:
        """The first outside piece by quote parity, if every `"` of the chunk is where parity says: each
        opening one at a field's start, each closing one before a delimiter, a line break
        or a `""`. Else None (a stray quote: the chunk needs `slow`)."""
        starts_outside = not self.inside
        outside = quote.join(pieces[0 if starts_outside else 1 :: 2])
        fine = (quote, quote[:0], *openers)
        if stray.search(outside) or stray.search(outside[::-1]):
            return None
        if not outside and starts_outside and self.before[-1:] not in openers:
            return None  # the chunk opens with `"` after an ordinary character
        if outside[:1] == quote and starts_outside and self.before[-1:] not in openers:
            return None
        if not starts_outside and outside[:1] not in fine:
            return None  # the closing `"` at the start is followed by an ordinary character
        ends_inside = starts_outside == (len(pieces) % 2 == 0)
        if ends_inside and outside[-1:] not in fine:
            return None  # the last `"` opens after an ordinary character
        self.inside = ends_inside
        if not ends_inside and not pieces[-1]:
            self.inside = self.pending = True  # a closing `"` last: maybe doubled
        self.before = (self.before + quote.join(pieces[-2:]))[-2:]
        return 0 if starts_outside else 1

    def slow(self, pieces: list, quote, openers: tuple) -> list[bool]:
        """The flags, deciding quote by quote."""
        flags = []
        skip = False  # the `"` after this piece is the second of a doubled pair
        last = len(pieces) - 1
        if self.pending:  # the previous chunk's last `"`: doubled or closing
            self.pending = False
            if pieces[0] == pieces[0][:0] and last > 0:
                skip = True  # `""` across the chunks: still inside
            else:
                self.inside = False
        for index, piece in enumerate(pieces):
            flags.append(not self.inside)
            self.before = (self.before + piece)[-2:]
            if index == last:
                break
            # the `"` after this piece
            if skip:
                skip = False
            elif not self.inside:
                self.inside = self._at_field_start(openers)
            elif index + 1 == last and not pieces[last]:
                self.pending = True  # the chunk's last character: decided by the next
            elif not pieces[index + 1] and index + 1 < last:
                skip = True  # `""`: a quote inside the field
            else:
                self.inside = False
            self.before = (self.before + quote)[-2:]
        return flags

    def _at_field_start(self, openers: tuple) -> bool:
        """After a delimiter or a line break, or (as DuckDB reads) one space after one."""
        last, earlier = self.before[-1:], self.before[-2:-1]
        space = " " if isinstance(last, str) else b" "
        return last in openers or (last == space and earlier in openers)


@dataclass(frozen=True)
class _Parity:
    """Outside flags by parity: pieces first, first + 2, ... lie outside quotes."""

    first: int

    def __getitem__(self, index: int) -> bool:
        return index % 2 == self.first


def _first_and_last_break(pieces: list, outside, nl, size: int) -> tuple[int, int]:
    """Offsets in the chunk (of `size` units) of its first and last line break outside
    quotes."""
    first = last = -1
    position = 0
    for index, piece in enumerate(pieces):
        if outside[index] and (found := piece.find(nl)) >= 0:
            first = position + found
            break
        position += len(piece) + 1
    position = size
    for index in range(len(pieces) - 1, -1, -1):
        piece = pieces[index]
        position -= len(piece)
        if outside[index] and (found := piece.rfind(nl)) >= 0:
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
