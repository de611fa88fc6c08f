"""The landing contract: which columns each source has, their types and row rules.

This is the single definition of the canonical exports (docs/landing-contract.md).
Ingestion turns it into SQL (type casts and row checks), and the raw
tables in the build database are created from it, so the rules live in one place.
How a real export's columns map onto these is configuration, not contract
(`sources.yml`, `sources.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

ORDER_STATUSES = ("completed", "cancelled", "refunded")

# The column an export may carry the customer's e-mail address in. It is never
# stored: when a source's customer key is the e-mail, `customer_id` becomes its
# salted SHA-256 (see `customer_key_sql` in ingest/run.py), otherwise it is dropped.
EMAIL = "email"
# What counts as an e-mail address inside a value (DuckDB's RE2 syntax): a plain or
# "quoted" local part, then a domain with a letter TLD (any script, or punycode
# xn--) or an [IP literal]. Matches are masked or the row is quarantined.
EMAIL_PATTERN = (
    r'(?:"[^"\r\n]{1,64}"|[^\s@<>,;:"()\[\]]+)@'
    r'(?:\[[^\]\s]{1,64}\]|[^\s@<>,;:"()\[\]]+\.(?:xn--[0-9A-Za-z-]+|\pL{2,}))'
)


@dataclass(frozen=True)
class Column:
    """One canonical column.

    kind: text | timestamp | date | decimal | integer | enum | currency
    - date is a calendar day ("2024-03-05"; a timestamp's time of day is ignored);
    - integer accepts integral values written with a zero fraction ("7", "7.0");
    - currency is an ISO code, upper-cased, that must be the reporting currency
      (or have a rate in the configured rates file);
    - `currency_column` (decimal columns) names the column holding this amount's
      currency: with a rates file the amount is converted to the reporting currency;
    - `free_text` columns have e-mail addresses inside them replaced by `<email>`;
      in any other text, enum or currency column an address quarantines the row;
    - `rejects_emails` columns (customer ids) may not hold an "@": an e-mail is a
      customer key only as its salted hash (`customer_key: email`).
    """

    name: str
    kind: str = "text"
    required: bool = False
    minimum: float | None = None
    maximum: float | None = None
    accepted: tuple[str, ...] = ()
    default: str | None = None
    lowercase: bool = False
    currency_column: str | None = None
    free_text: bool = False
    rejects_emails: bool = False


@dataclass(frozen=True)
class Source:
    """One source of the contract.

    `key`: the columns that identify a row (one row per key is kept: the latest file,
    then the latest line, wins). `replaced_by` (default: the key) is the unit a later
    delivery replaces: with ("order_id",), a later file that holds any line of an
    order replaces all earlier lines of that order, also those it no longer lists.
    `customer_column` names the row's customer; a source without one may name, in
    `order_column`, the order whose customer the row belongs to (an order line).
    """

    name: str
    folder: str
    key: tuple[str, ...]
    columns: tuple[Column, ...] = field(default_factory=tuple)
    customer_column: str | None = "customer_id"
    order_column: str | None = None
    replaced_by: tuple[str, ...] = ()

    @property
    def unit(self) -> tuple[str, ...]:
        """The columns of what a later delivery replaces as a whole."""
        return self.replaced_by or self.key

    @property
    def required(self) -> list[str]:
        return [column.name for column in self.columns if column.required]

    @property
    def column_names(self) -> list[str]:
        return [column.name for column in self.columns]

    def column(self, name: str) -> Column:
        return next(column for column in self.columns if column.name == name)


ORDERS = Source(
    name="orders",
    folder="orders",
    key=("order_id",),
    columns=(
        Column("order_id", required=True),
        Column("customer_id", required=True, rejects_emails=True),
        Column("ordered_at", "timestamp", required=True),
        Column("amount", "decimal", required=True, minimum=0, currency_column="currency"),
        Column(
            "status",
            "enum",
            accepted=ORDER_STATUSES,
            default="completed",
            lowercase=True,
        ),
        Column("currency", "currency"),
        Column("channel", lowercase=True),
        Column("country"),
        # Optional parts of the amount, so that order lines reconcile with it:
        # lines - discount + shipping + tax (- refunded, where the amount nets it).
        Column("discount_amount", "decimal", minimum=0, currency_column="currency"),
        Column("shipping_amount", "decimal", minimum=0, currency_column="currency"),
        Column("tax_amount", "decimal", minimum=0, currency_column="currency"),
        Column("refunded_amount", "decimal", minimum=0, currency_column="currency"),
    ),
)

SURVEYS = Source(
    name="surveys",
    folder="surveys",
    key=("response_id",),
    columns=(
        Column("response_id", required=True),
        Column("responded_at", "timestamp", required=True),
        Column("customer_id", rejects_emails=True),
        Column("nps_score", "integer", minimum=0, maximum=10),
        Column("csat_score", "integer", minimum=1, maximum=5),
        Column("ces_score", "integer", minimum=1, maximum=7),
        Column("comment", free_text=True),
        Column("channel", lowercase=True),
    ),
)

# One row per survey invitation sent (optional): the denominator of response rates.
SURVEY_SENDS = Source(
    name="survey_sends",
    folder="survey_sends",
    key=("send_id",),
    columns=(
        Column("send_id", required=True),
        Column("customer_id", required=True, rejects_emails=True),
        Column("sent_at", "timestamp", required=True),
        Column("channel", lowercase=True),
    ),
)

# One row per line item of an order (optional). A later delivery holding any line of
# an order replaces all earlier lines of that order (a correction may have fewer).
ORDER_LINES = Source(
    name="order_lines",
    folder="order_lines",
    key=("order_id", "line_number"),
    replaced_by=("order_id",),
    customer_column=None,
    order_column="order_id",
    columns=(
        Column("order_id", required=True),
        Column("line_number", "integer", required=True, minimum=1),
        Column("product_id", required=True),
        Column("product_name", free_text=True),
        Column("category"),
        Column("vendor"),
        Column("quantity", "integer", required=True, minimum=0),
        Column("unit_price", "decimal", minimum=0, currency_column="currency"),
        Column("line_amount", "decimal", required=True, minimum=0, currency_column="currency"),
        Column("discount_amount", "decimal", minimum=0, currency_column="currency"),
        Column("currency", "currency"),
    ),
)

# Marketing spend per channel (and campaign) per day (optional): the cost side of CAC.
MARKETING_SPEND = Source(
    name="marketing_spend",
    folder="marketing_spend",
    key=("spent_on", "channel", "campaign"),
    customer_column=None,
    columns=(
        Column("spent_on", "date", required=True),
        Column("channel", required=True, lowercase=True),
        Column("campaign"),
        Column("amount", "decimal", required=True, minimum=0, currency_column="currency"),
        Column("currency", "currency"),
    ),
)

SOURCES: dict[str, Source] = {
    source.name: source for source in (ORDERS, SURVEYS, SURVEY_SENDS, ORDER_LINES, MARKETING_SPEND)
}
