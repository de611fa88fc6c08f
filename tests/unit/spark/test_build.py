"""The order of the Spark build (spark/build.py `waves`): on the dbt project's own
manifest, every SQL model builds once, after every model it reads, and the CLV models,
which run between the dbt runs, each after its own inputs. Pure Python on the manifest
of the demo run: no Spark needed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from customer_marts.clv.steps import STEPS
from spark.build import waves
from spark.clv import model_nodes

pytestmark = pytest.mark.dbt_build  # reads the manifest of the shared demo run


@pytest.fixture(scope="module")
def manifest(published_demo: Path) -> dict:
    return json.loads((published_demo / "dbt" / "target" / "manifest.json").read_text())


def test_every_model_builds_once_after_everything_it_reads(manifest):
    models = {
        node["unique_id"]: node
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model"
    }
    planned = waves(model_nodes(manifest))
    assert len(planned) == len(STEPS) + 1
    # The build's slots: wave 0, the first CLV model, wave 1, ...; dbt orders the
    # models of one wave itself.
    slot = {name: 2 * number for number, wave in enumerate(planned) for name in wave}
    slot.update({name: 2 * number + 1 for number, name in enumerate(STEPS)})
    names = [node["name"] for node in models.values()]
    assert sorted(slot) == sorted(names)
    assert sum(len(wave) for wave in planned) + len(STEPS) == len(names)  # each once
    for node in models.values():
        for parent in node["depends_on"]["nodes"]:
            if parent in models:
                before, after = slot[models[parent]["name"]], slot[node["name"]]
                same_dbt_run = before == after and before % 2 == 0
                assert before < after or same_dbt_run, (parent, node["name"])


def test_dim_customers_waits_for_the_predictions_and_the_group_sums_for_it(manifest):
    planned = waves(model_nodes(manifest))
    steps = list(STEPS)
    assert "int_customers_summarised_for_clv" in planned[0]
    predicted = steps.index("int_customers_predicted_by_btyd") + 1
    assert "dim_customers" in planned[predicted]
    assert steps.index("int_clv_sums_by_group") > steps.index("int_customers_predicted_by_btyd")
    assert {"clv_by_cohort", "clv_by_segment"} <= set(
        planned[steps.index("int_clv_sums_by_group") + 1]
    )


def test_a_python_model_the_clv_step_does_not_know_is_refused(manifest):
    changed = json.loads(json.dumps(manifest))
    node = next(n for n in changed["nodes"].values() if n["name"] == "dim_customers")
    node["language"] = "python"
    with pytest.raises(RuntimeError, match="dim_customers"):
        model_nodes(changed)
