"""Check results (`audit.check_results`): the gate's and dbt's tests, one row per check."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from customer_marts.warehouse import connect


@dataclass(frozen=True)
class CheckResult:
    layer: str
    suite: str
    check: str
    status: str  # passed | warned | failed
    observed_value: str | None = None
    details: str | None = None
    # What a person needs to know about a check that did not pass (meta.message)
    message: str | None = None

    def describe(self) -> str:
        text = f"{self.suite}: {self.check}"
        if self.message:
            return f"{text}: {self.message}"
        if self.observed_value:
            text += f" (observed: {self.observed_value})"
        if self.details:
            text += f"; {self.details}"
        return text


def record_checks(build_db: Path, run_id: str, layer: str, results: list[CheckResult]) -> None:
    """Record a layer's check results for a run, replacing what an earlier attempt of the
    same step recorded (a cleared or retried task), so the run record counts each check once."""
    with connect(build_db) as con:
        con.execute("begin")
        con.execute(
            "delete from audit.check_results where run_id = ? and layer = ?", [run_id, layer]
        )
        rows = [
            [run_id, r.layer, r.suite, r.check, r.status, r.observed_value, r.message or r.details]
            for r in results
        ]
        if rows:  # a build without tests (--exclude-resource-type test) has none
            con.executemany("insert into audit.check_results values (?, ?, ?, ?, ?, ?, ?)", rows)
        con.execute("commit")
