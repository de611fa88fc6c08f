"""The landing contract: which columns each source has, their types and row rules.

This is the single definition of the canonical exports (README, "Landing
contract"). Ingestion turns it into SQL (type casts and row checks), and the raw
tables in the build database are created from it, so the rules live in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ORDER_STATUSES = ("completed", "cancelled", "refunded")


@dataclass(frozen=True)
class Column:
    """One canonical column.

    kind: text | timestamp | decimal | integer | enum
    """

    name: str
    kind: str = "text"
    required: bool = False
    minimum: float | None = None
    maximum: float | None = None
    accepted: tuple[str, ...] = ()
    default: str | None = None
    lowercase: bool = False


@dataclass(frozen=True)
class Source:
    name: str
    folder: str
    key: str
    event_at: str
    columns: tuple[Column, ...] = field(default_factory=tuple)

    @property
    def required(self) -> list[str]:
        return [column.name for column in self.columns if column.required]

    @property
    def column_names(self) -> list[str]:
        return [column.name for column in self.columns]


ORDERS = Source(
    name="orders",
    folder="orders",
    key="order_id",
    event_at="ordered_at",
    columns=(
        Column("order_id", required=True),
        Column("customer_id", required=True),
        Column("ordered_at", "timestamp", required=True),
        Column("amount", "decimal", required=True, minimum=0),
        Column(
            "status",
            "enum",
            accepted=ORDER_STATUSES,
            default="completed",
            lowercase=True,
        ),
        Column("currency"),
        Column("channel", lowercase=True),
        Column("country"),
    ),
)

SURVEYS = Source(
    name="surveys",
    folder="surveys",
    key="response_id",
    event_at="responded_at",
    columns=(
        Column("response_id", required=True),
        Column("responded_at", "timestamp", required=True),
        Column("customer_id"),
        Column("nps_score", "integer", minimum=0, maximum=10),
        Column("csat_score", "integer", minimum=1, maximum=5),
        Column("ces_score", "integer", minimum=1, maximum=7),
        Column("comment"),
        Column("channel", lowercase=True),
    ),
)

SOURCES: dict[str, Source] = {source.name: source for source in (ORDERS, SURVEYS)}

# Columns that may appear in an export but are never stored (personal data).
DROPPED_COLUMNS = ("email",)
