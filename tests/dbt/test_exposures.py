"""The run report's exposure lists exactly the marts the report reads: a chart that
starts reading another mart shows in the docs site's lineage only if it is added."""

from __future__ import annotations

import re

import yaml

from customer_marts.config import PROJECT_ROOT


def test_the_run_reports_exposure_depends_on_the_marts_it_reads():
    exposures = yaml.safe_load((PROJECT_ROOT / "dbt_project/models/exposures.yml").read_text())
    (report,) = [e for e in exposures["exposures"] if e["name"] == "run_report"]
    marts = {path.stem for path in (PROJECT_ROOT / "dbt_project/models/marts").rglob("*.sql")}
    code = "".join(
        path.read_text() for path in (PROJECT_ROOT / "customer_marts/report").glob("*.py")
    )
    read = set(re.findall(r"\bmarts\.(\w+)", code)) & marts
    assert read >= {"cohort_retention", "nps_by_period", "customer_clv"}  # the parse works
    depends = {re.fullmatch(r"ref\('(\w+)'\)", ref).group(1) for ref in report["depends_on"]}
    assert depends == read
