"""Whether a build rebuilds every model (`dbt build --full-refresh`) or lets the
incremental models add to what the earlier builds left, and why.

An incremental model is only right if what it keeps was computed the way this build
computes, from the rows this build sees. So a build is a full rebuild when:

- it is forced: FULL_REFRESH=1 (`customer-marts run --full-refresh`) or the DAG run's
  `full_refresh` param;
- there is no earlier successful build in the build database (a new or recovered one);
- the last build attempt was a full rebuild that did not finish (the models are a mix),
  or an incremental one as of a later date than this build's (the customers whose rows
  its later date made visible may be built in, and this build's changes do not cover
  them);
- the dbt vars in force differ from the last successful build's (a threshold such as
  `churn_window_days` changes rows already built);
- the dbt project's code differs (models, macros, tests, seeds, dbt_project.yml, the
  CLV code the Python models import, the dbt versions);
- the sources configuration differs (sources.yml, presets.yml);
- the as-of date is before the last successful build's (a backfill of an older date:
  rows after it were built in and must go).

Otherwise the build is incremental; with every model a table it rebuilds them all anyway.
The decision and its reasons are recorded in `audit.build_state`
(customer_marts/runs/build_state.py) and logged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date

from customer_marts.transform.fingerprint import BuildInputs

# FULL_REFRESH=1 in the environment forces a full rebuild (customer-marts run --full-refresh).
FULL_REFRESH_ENV = "FULL_REFRESH"


@dataclass(frozen=True)
class PreviousBuild:
    """A build recorded in audit.build_state."""

    run_id: str
    as_of: date
    status: str  # running, success or failed
    full_refresh: bool
    inputs: BuildInputs


@dataclass(frozen=True)
class Refresh:
    full: bool
    reasons: list[str] = field(default_factory=list)

    @property
    def reason(self) -> str | None:
        """The reasons in one sentence; None for an incremental build."""
        return "; ".join(self.reasons) if self.full else None


def changed_vars(before: dict, after: dict) -> list[str]:
    """`name: old -> new` for each var whose value differs (JSON, as recorded)."""

    def shown(values: dict, name: str) -> str:
        return json.dumps(values[name]) if name in values else "unset"

    return [
        f"{name}: {shown(before, name)} -> {shown(after, name)}"
        for name in sorted(set(before) | set(after))
        if before.get(name, KeyError) != after.get(name, KeyError)
    ]


def decide(
    inputs: BuildInputs,
    as_of: date,
    last_success: PreviousBuild | None,
    latest: PreviousBuild | None,
    forced: list[str] | None = None,
) -> Refresh:
    """The refresh of a build of `inputs` as of `as_of`, given the last successful build
    and the latest build attempt of the build database (None: there is none), and the
    reasons it is forced (FULL_REFRESH=1, the DAG param)."""
    reasons = list(forced or [])
    if latest is not None and latest.full_refresh and latest.status != "success":
        reasons.append(f"the full rebuild of run {latest.run_id} did not finish")
    elif latest is not None and latest.status != "success" and as_of < latest.as_of:
        reasons.append(
            f"the unfinished incremental build of run {latest.run_id} was as of a later date "
            f"({latest.as_of} -> {as_of}: rows it may have built in must go)"
        )
    if last_success is None:
        reasons.append("no earlier successful build in this build database")
    else:
        before = last_success.inputs
        if before.dbt_vars != inputs.dbt_vars:
            changes = ", ".join(changed_vars(before.dbt_vars, inputs.dbt_vars))
            reasons.append(f"the dbt vars changed ({changes})")
        if before.project != inputs.project:
            reasons.append("the dbt project's code changed")
        if before.sources != inputs.sources:
            reasons.append("the sources configuration changed (sources.yml, presets.yml)")
        if as_of < last_success.as_of:
            reasons.append(
                f"the as-of date moved backwards ({last_success.as_of} -> {as_of}: "
                f"the last successful build, run {last_success.run_id}, was as of the later date)"
            )
    return Refresh(full=bool(reasons), reasons=reasons)
