"""docker-compose.yml (no Docker engine here): the services, mounts and settings a
first deployment needs are declared."""

from __future__ import annotations

import yaml

from customer_marts.config import PROJECT_ROOT

COMPOSE = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())


def test_airflow_services_with_postgres_and_local_executor():
    services = COMPOSE["services"]
    assert {
        "postgres",
        "airflow-init",
        "airflow-apiserver",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
    } <= set(services)
    for name in (
        "airflow-apiserver",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
    ):
        service = services[name]
        assert service["environment"]["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert (
            service["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"
        )
        mounts = {volume.split(":")[1] for volume in service["volumes"]}
        assert {
            "/opt/airflow/dags",
            "/opt/airflow/dbt_project",
            "/opt/airflow/expectations",
            "/opt/airflow/data",
        } <= mounts
    assert (
        "postgresql"
        in services["airflow-scheduler"]["environment"]["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    )
    assert "healthcheck" in services["postgres"]
