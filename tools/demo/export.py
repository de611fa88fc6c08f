"""The demo's CSV files: one per day (or month) of a frame's rows, formatted in Arrow.

The lines are formatted column by column (as pandas' `to_csv` writes them: timestamps
as ISO 8601 UTC, numbers as Python prints them, -1 scores as empty cells, minimal
quoting), a bounded number of rows at a time, and each file's lines are written as one
block.
"""

from __future__ import annotations

import hashlib
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

# At most about this many rows are formatted at once (whole files only).
CHUNK_ROWS = 1_000_000


def text_column(values: pa.Array | pa.ChunkedArray) -> pd.api.extensions.ExtensionArray:
    """Arrow strings as a pandas `str` column."""
    return values.to_pandas().array


def write_files(
    frame: pd.DataFrame, at: np.ndarray, folder: Path, prefix: str, unit: str = "D"
) -> dict[str, str]:
    """One CSV per day (unit "D") or month ("M") of `at`, the rows' times:
    `<prefix>_<YYYY-MM-DD>.csv` (`<prefix>_<YYYY-MM>.csv`), rows in frame order;
    returns {file name: SHA-256 of its content}."""
    folder.mkdir(parents=True, exist_ok=True)
    period = np.asarray(at).astype("datetime64[s]").astype(f"datetime64[{unit}]")
    order = np.argsort(period, kind="stable")  # groupby(period): its rows in frame order
    periods, starts = np.unique(period[order], return_index=True)
    ends = np.append(starts[1:], len(order))
    header = (",".join(frame.columns) + "\n").encode()
    written = {}
    first = 0
    while first < len(periods):
        limit = starts[first] + CHUNK_ROWS
        last = max(int(np.searchsorted(ends, limit, side="right")), first + 1)
        rows = order[starts[first] : ends[last - 1]]
        data, offsets = _csv_lines(frame.take(rows))
        base = starts[first]
        for value, start, end in zip(
            periods[first:last], starts[first:last], ends[first:last], strict=True
        ):
            name = f"{prefix}_{value}.csv"
            body = memoryview(data)[offsets[start - base] : offsets[end - base]]
            with (folder / name).open("wb") as handle:
                handle.write(header)
                handle.write(body)
            written[name] = hashlib.sha256(header + body).hexdigest()
        first = last
    return written


def _csv_lines(frame: pd.DataFrame) -> tuple[pa.Buffer, np.ndarray]:
    """The frame's CSV lines as one buffer and the offset of each line in it."""
    fields = [_csv_field(frame[name]) for name in frame.columns]
    text = partial(pa.scalar, type=pa.large_string())
    row = pc.binary_join_element_wise(*fields, text(","))
    lines = pc.binary_join_element_wise(row, text("\n"), text(""))
    offsets = np.frombuffer(lines.buffers()[1], np.int64)[lines.offset :]
    return lines.buffers()[2], offsets - offsets[0]


def _csv_field(column: pd.Series) -> pa.LargeStringArray:
    """A column's CSV text (large strings: a whole export can exceed 2 GB)."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        names = _csv_field(pd.Series(column.cat.categories.astype("str")))
        return pc.take(names, pa.array(column.cat.codes.to_numpy()))
    if pd.api.types.is_datetime64_any_dtype(column):
        # "2024-01-15 10:23:45" (Arrow's cast, far faster than strftime) -> ISO 8601 UTC
        at = column.to_numpy().astype("datetime64[s]")
        text = pc.replace_substring(
            pc.cast(pa.array(at), pa.string()), " ", "T", max_replacements=1
        )
        text = pc.binary_join_element_wise(text, "Z", "")
    elif pd.api.types.is_float_dtype(column):
        text = _decimal_text(column.to_numpy())
    elif pd.api.types.is_integer_dtype(column):
        values = column.to_numpy()
        # -1 marks "question not asked" (csat_score, ces_score): an empty cell in the export
        text = pc.cast(pa.array(values), pa.string())
        if column.name in ("csat_score", "ces_score"):
            text = pc.if_else(pa.array(values >= 0), text, "")
    else:
        text = pa.array(column, pa.string())
        needs_quotes = pc.match_substring_regex(text, '[,"\r\n]')
        quoted = pc.binary_join_element_wise('"', pc.replace_substring(text, '"', '""'), '"', "")
        text = pc.if_else(needs_quotes, quoted, text)
    return pc.cast(text, pa.large_string())


def _decimal_text(values: np.ndarray) -> pa.Array:
    """Amounts rounded to cents as Python prints them: 41.88, 41.8, 41.0."""
    cents = np.rint(values * 100).astype(np.int64)
    if not np.array_equal(cents / 100, values):
        raise ValueError("the demo writes amounts rounded to cents only")
    whole = pc.cast(pa.array(np.sign(cents) * (np.abs(cents) // 100)), pa.string())
    fraction = np.abs(cents) % 100
    decimals = pc.utf8_lpad(pc.cast(pa.array(fraction), pa.string()), 2, "0")
    decimals = pc.if_else(
        pa.array(fraction % 10 == 0), pc.utf8_slice_codeunits(decimals, 0, 1), decimals
    )
    return pc.binary_join_element_wise(whole, decimals, ".")
