"""Source configuration: where each source's export files are and how their
columns map onto the landing contract.

`sources.yml` in the configuration folder (CUSTOMER_MARTS_CONFIG_DIR, default
`config/` at the project root: the user's file, not the package's) declares the
sources `orders`, `surveys` and `survey_sends`: folder under LANDING_DIR, file globs,
format, delimiter, decimal separator, encoding, the time zone of naive timestamps,
the customer key, and a mapping from the export's column names to the canonical
ones. A source may start from a preset in `presets.yml` (a known export format such
as Shopify's). The contract (`contract.py`) stays the one definition of the canonical columns and
their rules; this module only says how an export is read onto it.
"""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

import yaml

from customer_marts.config import config_dir
from customer_marts.ingest.contract import EMAIL, SOURCES, Source

FORMATS = ("auto", "csv", "csv.gz", "parquet")
ENCODINGS = ("utf-8", "utf-16", "latin-1")
DELIMITERS = (",", ";", "\t", "|")
CUSTOMER_KEYS = ("id", "email")
DEFAULTS: dict[str, Any] = {
    "glob": ["*.csv", "*.csv.gz", "*.parquet"],
    "format": "auto",
    "delimiter": "auto",
    "decimal_separator": ".",
    "encoding": "utf-8",
    "timezone": "UTC",
    "customer_key": "id",
    "collapse": False,
    "columns": {},
    "derive": {},
    "required": [],
}
SOURCE_KEYS = {"folder", "preset", *DEFAULTS}
PRESET_KEYS = {"contract", "description", *DEFAULTS}
TOP_KEYS = {"reporting_currency", "rates_file", "sources"}
NAME = re.compile(r"[a-z_][a-z0-9_]*")


class SourceConfigError(ValueError):
    """sources.yml or presets.yml says something the pipeline cannot do."""


def normalise(header: str) -> str:
    """How export column names are compared: case-insensitive, trimmed."""
    return header.strip().lower()


@dataclass(frozen=True)
class SourceConfig:
    """How one source's exports are found and read onto its contract."""

    contract: Source
    folder: str
    globs: tuple[str, ...]
    format: str
    delimiter: str | None  # None: sniffed from the header line
    decimal_separator: str
    encoding: str
    timezone: str
    customer_key: str
    collapse: bool
    columns: tuple[tuple[str, str], ...]  # (normalised export name, target), in order
    derive: tuple[tuple[str, str], ...]  # (canonical column, SQL expression)
    required_extra: tuple[str, ...] = ()
    preset: str | None = None

    @property
    def name(self) -> str:
        return self.contract.name

    @property
    def hashes_email(self) -> bool:
        return self.customer_key == "email" and self.contract.customer_column is not None

    @property
    def helpers(self) -> list[str]:
        """Mapped names that are not canonical columns (inputs of `derive`)."""
        known = {*self.contract.column_names, EMAIL}
        return list(dict.fromkeys(t for _, t in self.columns if t not in known))

    @property
    def targets(self) -> list[str]:
        """Every name a landed row has: canonical columns, email, helpers."""
        return [*self.contract.column_names, EMAIL, *self.helpers]

    def candidates(self, target: str) -> list[str]:
        """Normalised export names that fill `target`, the mapped ones first."""
        names = [export for export, mapped in self.columns if mapped == target]
        taken = {export for export, _ in self.columns}  # mapped to another name
        return names if target in taken else [*names, target]

    @property
    def required_targets(self) -> list[str]:
        """Names a file's header must provide (after mapping)."""
        derived = {column for column, _ in self.derive}
        mapped = {target for _, target in self.columns}
        required = [
            name
            for name in self.contract.required
            if not (name in derived and name not in mapped)
            and not (self.hashes_email and name == self.contract.customer_column)
        ]
        if self.hashes_email:
            required.append(EMAIL)
        return list(dict.fromkeys([*required, *self.required_extra]))

    def describe_target(self, target: str) -> str:
        """`amount` or `amount (export column "Total")` for error messages."""
        exports = [export for export, mapped in self.columns if mapped == target]
        if not exports:
            return target
        return f"{target} (export column {' or '.join(repr(e) for e in exports)})"

    def format_of(self, path: PurePath) -> str:
        if self.format != "auto":
            return self.format
        name = path.name.lower()
        if name.endswith(".parquet"):
            return "parquet"
        return "csv.gz" if name.endswith(".gz") else "csv"


@dataclass(frozen=True)
class SourcesConfig:
    reporting_currency: str
    rates_file: str | None
    sources: dict[str, SourceConfig]

    def rates_path(self, landing_dir: Path) -> Path | None:
        if not self.rates_file:
            return None
        path = Path(self.rates_file)
        return path if path.is_absolute() else landing_dir / path


def sources_file() -> Path:
    """sources.yml in the configuration folder (CUSTOMER_MARTS_CONFIG_DIR)."""
    return config_dir() / "sources.yml"


def presets_file() -> Path:
    """presets.yml in the configuration folder (CUSTOMER_MARTS_CONFIG_DIR)."""
    return config_dir() / "presets.yml"


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise SourceConfigError(f"{path}: cannot be read ({exc})") from exc
    if not isinstance(data, dict):
        raise SourceConfigError(f"{path}: expected a mapping at the top level")
    return data


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Override wins key by key; `columns` and `derive` are merged entry by entry."""
    merged = dict(base)
    for key, value in override.items():
        if key in ("columns", "derive") and isinstance(value, dict):
            merged[key] = {**(merged.get(key) or {}), **value}
        else:
            merged[key] = value
    return merged


def load(
    path: Path | None = None,
    overrides: dict[str, Any] | None = None,
    presets_path: Path | None = None,
) -> SourcesConfig:
    """Read sources.yml (the configuration folder's by default), apply overrides, resolve
    presets (the configuration folder's presets.yml by default).

    `overrides` has the file's shape, e.g. {"sources": {"orders": {"delimiter": ";"}}}.
    """
    path = path or sources_file()
    data = _read_yaml(path)
    for key, value in (overrides or {}).items():
        if key == "sources":
            sources = dict(data.get("sources") or {})
            for name, entry in value.items():
                sources[name] = _merge(sources.get(name) or {}, entry)
            data["sources"] = sources
        else:
            data[key] = value
    unknown = set(data) - TOP_KEYS
    if unknown:
        raise SourceConfigError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}")
    presets = _read_yaml(presets_path or presets_file())
    entries = data.get("sources") or {}
    extra = set(entries) - set(SOURCES)
    if extra:
        raise SourceConfigError(
            f"{path}: unknown source(s) {', '.join(sorted(extra))}; "
            f"the landing contract has {', '.join(SOURCES)}"
        )
    currency = str(data.get("reporting_currency") or "USD").strip().upper()
    if not re.fullmatch(r"[A-Z]{3}", currency):
        raise SourceConfigError(f"{path}: reporting_currency {currency!r} is not an ISO code")
    return SourcesConfig(
        reporting_currency=currency,
        rates_file=data.get("rates_file") or None,
        sources={
            name: _source(path, contract, entries.get(name) or {}, presets)
            for name, contract in SOURCES.items()
        },
    )


def _kind(value: Any) -> str:
    """What a YAML value is, in words: "a number", "a list", ..."""
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if value == []:
        return "an empty list"
    return {list: "a list", dict: "a mapping", str: "text"}.get(type(value), "empty")


def _source(
    path: Path, contract: Source, entry: dict[str, Any], presets: dict[str, Any]
) -> SourceConfig:
    where = f"{path}: sources.{contract.name}"
    unknown = set(entry) - SOURCE_KEYS
    if unknown:
        raise SourceConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    preset_name = entry.get("preset")
    merged = dict(DEFAULTS)
    if preset_name:
        preset = presets.get(preset_name)
        if not isinstance(preset, dict):
            raise SourceConfigError(
                f"{where}: unknown preset {preset_name!r} (presets: {', '.join(presets)})"
            )
        if preset.get("contract") != contract.name:
            raise SourceConfigError(
                f"{where}: preset {preset_name!r} maps the {preset.get('contract')} contract"
            )
        bad = set(preset) - PRESET_KEYS
        if bad:
            raise SourceConfigError(
                f"presets.{preset_name}: unknown key(s) {', '.join(sorted(bad))}"
            )
        merged = _merge(merged, {k: v for k, v in preset.items() if k in DEFAULTS})
    merged = _merge(merged, {k: v for k, v in entry.items() if k in DEFAULTS})

    def fail(message: str) -> SourceConfigError:
        return SourceConfigError(f"{where}: {message}")

    globs = merged["glob"]
    if isinstance(globs, str):
        globs = (globs,)
    elif isinstance(globs, list) and globs and all(isinstance(glob, str) for glob in globs):
        globs = tuple(globs)
    else:
        raise fail(f"glob must be a file pattern or a list of them, not {_kind(globs)}")
    for key, mapping in (
        ("columns", "export column names to names"),
        ("derive", "column names to SQL expressions"),
    ):
        if merged[key] is not None and not isinstance(merged[key], dict):
            raise fail(f"{key} must map {mapping}, not be {_kind(merged[key])}")
    required = merged["required"]
    if isinstance(required, str):
        required = (required,)
    elif required is None or (
        isinstance(required, list) and all(isinstance(name, str) for name in required)
    ):
        required = tuple(required or ())
    else:
        raise fail(f"required must be a column name or a list of them, not {_kind(required)}")
    if merged["format"] not in FORMATS:
        raise fail(f"format {merged['format']!r} is not one of {', '.join(FORMATS)}")
    delimiter = merged["delimiter"]
    if delimiter != "auto" and (not isinstance(delimiter, str) or len(delimiter) != 1):
        raise fail(f"delimiter {delimiter!r} must be 'auto' or one character")
    if merged["decimal_separator"] not in (".", ","):
        raise fail("decimal_separator must be '.' or ','")
    encoding = str(merged["encoding"]).lower().replace("_", "-")
    if encoding not in ENCODINGS:
        raise fail(f"encoding {merged['encoding']!r} is not one of {', '.join(ENCODINGS)}")
    try:
        zoneinfo.ZoneInfo(str(merged["timezone"]))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise fail(f"timezone {merged['timezone']!r} is not an IANA time zone") from exc
    if merged["customer_key"] not in CUSTOMER_KEYS:
        raise fail(f"customer_key must be one of {', '.join(CUSTOMER_KEYS)}")

    columns: dict[str, str] = {}
    for export, target in (merged["columns"] or {}).items():
        key = normalise(str(export))
        if not isinstance(target, str) or not NAME.fullmatch(target):
            raise fail(f"columns: {export!r} maps to {target!r}, not a lower_snake name")
        if columns.get(key, target) != target:
            raise fail(f"columns: {export!r} maps to both {columns[key]} and {target}")
        columns[key] = target
    derive = {str(k): str(v) for k, v in (merged["derive"] or {}).items()}
    for column in derive:
        if column not in contract.column_names:
            raise fail(f"derive: {column!r} is not a column of the {contract.name} contract")
    known = {*contract.column_names, EMAIL, *columns.values()}
    missing = [name for name in required if name not in known]
    if missing:
        raise fail(f"required: {', '.join(missing)} is not a mapped column")
    return SourceConfig(
        contract=contract,
        folder=str(entry.get("folder") or contract.folder),
        globs=globs,
        format=merged["format"],
        delimiter=None if delimiter == "auto" else delimiter,
        decimal_separator=merged["decimal_separator"],
        encoding=encoding,
        timezone=str(merged["timezone"]),
        customer_key=merged["customer_key"],
        collapse=bool(merged["collapse"]),
        columns=tuple(columns.items()),
        derive=tuple(derive.items()),
        required_extra=required,
        preset=preset_name,
    )
