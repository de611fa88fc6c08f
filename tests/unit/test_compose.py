"""docker-compose.yml, Dockerfile and .env.example, checked offline (no Docker engine here).

The file is validated against the Compose specification's JSON schema, then
checked for what a deployment needs: the services of Airflow's official compose
file, their start order and health checks, LocalExecutor by default with Celery
behind a profile, the project's folders mounted, and secrets only from .env.
That the health-check endpoints exist in Airflow 3.3 is shown by
tests/e2e/test_scheduler.py, which calls them on real processes.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from customer_marts.config import PROJECT_ROOT

BIN = Path(sys.executable).parent
COMPOSE_FILE = PROJECT_ROOT / "docker-compose.yml"
COMPOSE_TEXT = COMPOSE_FILE.read_text()
COMPOSE = yaml.safe_load(COMPOSE_TEXT)
SERVICES = COMPOSE["services"]
COMMON = COMPOSE["x-airflow-common"]
LONG_RUNNING = (
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
)
CORE = {"postgres", "airflow-init", *LONG_RUNNING}
AIRFLOW_SERVICES = [
    name for name, service in SERVICES.items() if service.get("image") == COMMON["image"]
]
# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}; `$${...}` is a literal `${` for the shell.
INTERPOLATION = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")
SECRET_NAME = re.compile(r"PASSWORD|SECRET|FERNET|SQL_ALCHEMY_CONN|RESULT_BACKEND")


def default_of(value: str) -> str:
    """The value Compose substitutes when the variable is unset: `${X:-d}` -> d."""
    match = INTERPOLATION.fullmatch(value)
    assert match and match.group(2) in (":-", "-"), f"{value!r} has no default"
    return match.group(3)


def env_example() -> dict[str, str]:
    """The variables .env.example sets, including commented-out alternatives (`# X=...`)."""
    pairs = re.findall(
        r"^#?\s*([A-Za-z_][A-Za-z0-9_]*)=(.*)$", (PROJECT_ROOT / ".env.example").read_text(), re.M
    )
    return dict(pairs)


def enabled_services(profiles: set[str]) -> set[str]:
    return {
        name
        for name, service in SERVICES.items()
        if not service.get("profiles") or profiles & set(service["profiles"])
    }


def check_jsonschema(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
    )


def test_the_file_validates_against_the_compose_specification():
    result = check_jsonschema(COMPOSE_FILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_catches_a_misspelt_key(tmp_path):
    """The schema forbids unknown keys, so the validation above can fail."""
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE_TEXT.replace("healthcheck:", "healtcheck:", 1))
    result = check_jsonschema(broken)
    assert result.returncode != 0
    assert "healtcheck" in result.stdout + result.stderr


def test_airflow_components_postgres_and_their_start_order():
    assert CORE <= set(SERVICES)
    assert not any(SERVICES[name].get("profiles") for name in CORE)
    postgres = SERVICES["postgres"]
    assert postgres["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    for name in LONG_RUNNING:
        service = SERVICES[name]
        assert service["depends_on"]["postgres"] == {"condition": "service_healthy"}, name
        assert service["depends_on"]["airflow-init"] == {
            "condition": "service_completed_successfully"
        }, name
        assert service["healthcheck"]["test"], name
        assert service["restart"] == "always", name
    commands = {name: SERVICES[name]["command"] for name in LONG_RUNNING}
    assert commands == {
        "airflow-apiserver": "api-server",
        "airflow-scheduler": "scheduler",
        "airflow-dag-processor": "dag-processor",
        "airflow-triggerer": "triggerer",
    }
    assert SERVICES["airflow-apiserver"]["ports"] == ["${AIRFLOW_PORT:-8080}:8080"]


def test_airflow_init_migrates_the_database_and_creates_the_admin_user_from_env():
    init = SERVICES["airflow-init"]
    env = init["environment"]
    assert env["_AIRFLOW_DB_MIGRATE"] == "true"
    assert env["_AIRFLOW_WWW_USER_CREATE"] == "true"
    assert INTERPOLATION.fullmatch(env["_AIRFLOW_WWW_USER_USERNAME"])
    assert INTERPOLATION.fullmatch(env["_AIRFLOW_WWW_USER_PASSWORD"]).group(2) == ":?"
    # the official image's entrypoint does both, then runs the command
    assert init["command"][-1].rstrip().endswith("exec /entrypoint airflow version")
    assert init["user"] == "0:0"  # to chown data/ and logs/ to AIRFLOW_UID


def test_every_airflow_service_shares_the_one_common_definition():
    assert set(AIRFLOW_SERVICES) == {"airflow-init", "airflow-worker", "flower", *LONG_RUNNING}
    for name in AIRFLOW_SERVICES:
        service = SERVICES[name]
        assert service["build"] == COMMON["build"] == "."
        assert service["volumes"] == COMMON["volumes"], name
        assert service["env_file"] == COMMON["env_file"], name
        # services may add variables (init, worker) but never change a shared one
        assert service["environment"].items() >= COMMON["environment"].items(), name
    assert COMMON["env_file"] == [{"path": ".env", "required": False}]


def test_local_executor_by_default_and_celery_behind_a_profile():
    env = COMMON["environment"]
    assert default_of(env["AIRFLOW__CORE__EXECUTOR"]) == "LocalExecutor"
    assert enabled_services(set()) == CORE  # `docker compose up`: no Redis, no worker
    assert enabled_services({"celery"}) == CORE | {"redis", "airflow-worker"}
    assert enabled_services({"celery", "flower"}) == CORE | {"redis", "airflow-worker", "flower"}
    worker = SERVICES["airflow-worker"]
    assert worker["command"] == "celery worker"
    assert worker["depends_on"]["redis"] == {"condition": "service_healthy"}
    assert SERVICES["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://:@redis:6379/0"
    # the documented switch, both halves of it, is in .env.example
    example = env_example()
    assert example["COMPOSE_PROFILES"] == "celery"
    assert example["AIRFLOW_EXECUTOR"] == "CeleryExecutor"


@pytest.mark.parametrize(
    "profiles", [set(), {"celery"}, {"celery", "flower"}, {"spark"}, {"bi", "spark"}]
)
def test_no_enabled_service_depends_on_one_its_profiles_leave_out(profiles):
    """Compose rejects the whole project ("depends on undefined service") otherwise."""
    enabled = enabled_services(profiles)
    for name in enabled:
        missing = set(SERVICES[name].get("depends_on", {})) - enabled
        assert not missing, f"with profiles {sorted(profiles)}, {name} depends on {missing}"


def test_project_folders_are_mounted_where_the_pipeline_looks():
    mounts = {}
    for volume in COMMON["volumes"]:  # SOURCE:TARGET[:MODE], SOURCE may be ${X:-./x}
        source, target, mode = re.fullmatch(
            r"((?:\$\{[^}]*\}|[^:])+):([^:]+)(?::(\w+))?", volume
        ).groups()
        mounts[target] = (source, [mode] if mode else [])
    assert mounts["/opt/airflow/dags"] == ("./dags", ["ro"])
    assert mounts["/opt/airflow/dbt_project"] == ("./dbt_project", ["ro"])
    assert mounts["/opt/airflow/expectations"] == ("./expectations", ["ro"])
    assert mounts["/opt/airflow/config"] == ("./config", ["ro"])  # sources.yml, presets.yml
    assert default_of(mounts["/opt/airflow/data"][0]) == "./data"
    assert mounts["/opt/airflow/data"][1] == []  # the pipeline writes the warehouse here
    env = COMMON["environment"]
    assert env["DBT_PROJECT_DIR"] == "/opt/airflow/dbt_project"
    assert env["EXPECTATIONS_DIR"] == "/opt/airflow/expectations"
    assert env["CUSTOMER_MARTS_CONFIG_DIR"] == "/opt/airflow/config"
    assert env["LANDING_DIR"] == "/opt/airflow/data/landing"
    assert env["WAREHOUSE_DIR"] == "/opt/airflow/data/warehouse"
    assert default_of(env["CUSTOMER_MARTS_SCHEDULE"]) == "@daily"


def test_secrets_come_only_from_env_and_env_example_holds_placeholders():
    env = COMMON["environment"] | SERVICES["airflow-init"]["environment"]
    env |= SERVICES["postgres"]["environment"]
    for key, value in env.items():
        if SECRET_NAME.search(key):
            used = INTERPOLATION.findall(value)
            assert used, f"{key} has a literal value in docker-compose.yml"
            assert all(op == ":?" or default == "" for _, op, default in used), key
    required = {name for name, op, _ in INTERPOLATION.findall(COMPOSE_TEXT) if op == ":?"}
    assert required == {"POSTGRES_PASSWORD", "AIRFLOW_JWT_SECRET", "_AIRFLOW_WWW_USER_PASSWORD"}
    example = env_example()
    assert all(example[name] == "change-me" for name in required)
    assert example["AIRFLOW_FERNET_KEY"] == ""
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", ".env"], cwd=PROJECT_ROOT, capture_output=True
    )
    assert ignored.returncode == 0, ".env must be git-ignored"


def test_env_example_documents_every_variable_the_compose_file_reads():
    read = {name for name, _, _ in INTERPOLATION.findall(COMPOSE_TEXT)}
    assert read <= set(env_example())


def test_dockerfile_extends_the_official_image_at_the_locked_airflow_version():
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text()
    args = dict(re.findall(r"^ARG (\w+)=(\S+)$", dockerfile, re.M))
    locked = re.search(
        r"^apache-airflow==(\S+)", (PROJECT_ROOT / "requirements.lock").read_text(), re.M
    )
    assert args["AIRFLOW_VERSION"] == locked.group(1)
    assert args["PYTHON_VERSION"] == f"{sys.version_info.major}.{sys.version_info.minor}"
    assert "FROM apache/airflow:${AIRFLOW_VERSION}-python${PYTHON_VERSION}" in dockerfile
    assert "--require-hashes -r /opt/customer_marts/requirements.lock" in dockerfile
    assert "pip install --no-cache-dir --no-deps /opt/customer_marts" in dockerfile


DEV_TOOLS = ("pytest", "ruff", "lifetimes", "check-jsonschema", "mkdocs", "mkdocs-material")


def lock_pins(path: Path) -> dict[str, str]:
    """{package: version} of a uv lock file."""
    return dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", path.read_text(), re.M))


def test_the_image_installs_runtime_requirements_only():
    """Every requirements file the Dockerfile installs is free of test, lint and docs tools;
    the development lock has them, at the runtime lock's version of every shared package."""
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text()
    installed = re.findall(r"pip install [^\n]*?-r (\S+)", dockerfile)
    copied = dict(
        reversed(shlex.split(line)[-2:]) for line in re.findall(r"^COPY (.+)$", dockerfile, re.M)
    )
    assert installed == ["/opt/customer_marts/requirements.lock"]
    for target in installed:
        pins = lock_pins(PROJECT_ROOT / copied[target])
        assert "apache-airflow" in pins and "dbt-core" in pins
        assert not set(DEV_TOOLS) & set(pins), target
    runtime = lock_pins(PROJECT_ROOT / "requirements.lock")
    dev = lock_pins(PROJECT_ROOT / "requirements-dev.lock")
    assert set(DEV_TOOLS) <= set(dev)
    assert {name: dev.get(name) for name in runtime} == runtime
    assert "requirements.lock requirements-dev.lock" in (PROJECT_ROOT / "Makefile").read_text()


def copied_and_allowed(context: Path) -> tuple[set[str], set[str]]:
    """What the build context's Dockerfile COPYs, and what its .dockerignore lets through."""
    dockerfile = (context / "Dockerfile").read_text()
    copied = {
        source
        for line in re.findall(r"^COPY (.+)$", dockerfile, re.M)
        for source in shlex.split(line)[:-1]
        if not source.startswith("--")
    }
    rules = (context / ".dockerignore").read_text().splitlines()
    assert "*" in rules
    return copied, {rule[1:].rstrip("/") for rule in rules if rule.startswith("!")}


def test_dockerignore_sends_only_what_the_dockerfile_copies():
    """The build context must not carry .venv, data/ or airflow_home/ (gigabytes)."""
    copied, allowed = copied_and_allowed(PROJECT_ROOT)
    assert copied == allowed


def test_airflow_init_demo_data_command_writes_data_ending_yesterday(tmp_path):
    """Runs the Python line of airflow-init's script against the installed package."""
    script = SERVICES["airflow-init"]["command"][-1]
    snippet = re.search(r'python -c "([^"]+)"', script).group(1)
    landing = tmp_path / "landing"
    landing.mkdir()
    subprocess.run(
        [sys.executable, "-c", snippet],
        env={"LANDING_DIR": str(landing), "PATH": "/usr/bin:/bin"},
        check=True,
        capture_output=True,
    )
    marker = yaml.safe_load((landing / "_demo.json").read_text())
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    assert date.fromisoformat(marker["last_date"]) == yesterday
    days = sorted(path.name for path in (landing / "orders").glob("orders_*.csv"))
    assert days[-1] == f"orders_{yesterday.isoformat()}.csv"
    assert days[0] >= f"orders_{yesterday - timedelta(days=729)}.csv"  # two years, inclusive


def run_init_demo_step(tmp_path: Path, demo_data: str) -> subprocess.CompletedProcess:
    """airflow-init's demo-data step (its `if` block) in bash, on folders under tmp_path:
    Compose's `$$` unescaped, the data mount and `python` pointed at this machine's."""
    script = SERVICES["airflow-init"]["command"][-1]
    block = re.search(r"^\s*if \[\[.*?^\s*fi$", script, re.M | re.S).group(0)
    data = tmp_path / "data"
    block = block.replace("$$", "$").replace("/opt/airflow/data", str(data))
    block = block.replace("python -c", f"{sys.executable} -c")
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block],
        env={
            "CUSTOMER_MARTS_DEMO_DATA": demo_data,
            "LANDING_DIR": str(data / "landing"),
            "PATH": "/usr/bin:/bin",
        },
        capture_output=True,
        text=True,
        check=True,
    )


def test_compose_writes_no_demo_data_unless_asked():
    """Demo data beside real exports would be published with them: by default
    airflow-init writes none, in the compose file and in .env.example alike."""
    init_env = SERVICES["airflow-init"]["environment"]
    assert default_of(init_env["CUSTOMER_MARTS_DEMO_DATA"]) == "false"
    assert env_example()["CUSTOMER_MARTS_DEMO_DATA"] == "false"


def test_airflow_init_writes_demo_data_only_into_an_empty_landing_folder(tmp_path):
    landing = tmp_path / "data/landing"
    (landing / "orders").mkdir(parents=True)
    (landing / "orders/real_export.csv").write_text("order_id,customer_id,ordered_at,amount\n")
    result = run_init_demo_step(tmp_path, "true")
    assert sorted(p.name for p in landing.rglob("*")) == ["orders", "real_export.csv"]
    assert "not empty" in result.stdout and "no demo data written" in result.stdout
    (landing / "orders/real_export.csv").unlink()
    (landing / "orders").rmdir()
    run_init_demo_step(tmp_path, "false")
    assert list(landing.iterdir()) == []


def test_env_example_says_the_salt_is_required_for_email_keys():
    text = (PROJECT_ROOT / ".env.example").read_text()
    comment = text[: text.index("\nCUSTOMER_KEY_SALT=")].rsplit("\n\n", 1)[-1]
    assert "customer_key: email" in comment and "at least 16" in comment


# ---------------------------------------------------------------- BI (profile `bi`)

BI_DIR = PROJECT_ROOT / "bi"
SUPERSET = SERVICES["superset"]


def volume_parts(volume: str) -> tuple[str, str, str | None]:
    return re.fullmatch(r"((?:\$\{[^}]*\}|[^:])+):([^:]+)(?::(\w+))?", volume).groups()


def test_superset_runs_only_in_the_bi_profile():
    assert SUPERSET["profiles"] == ["bi"]
    assert enabled_services({"bi"}) == CORE | {"superset"}
    assert enabled_services({"celery", "bi"}) == CORE | {"redis", "airflow-worker", "superset"}
    assert "superset" not in enabled_services(set())
    assert SUPERSET["restart"] == "always"


def test_superset_reads_the_published_warehouse_read_only():
    mounts = {
        target: (source, mode) for source, target, mode in map(volume_parts, SUPERSET["volumes"])
    }
    env = SUPERSET["environment"]
    source, mode = mounts[env["WAREHOUSE_DIR"]]
    assert mode == "ro"
    # the same host folder the pipeline publishes into (its data mount + /warehouse)
    data_source = next(
        source
        for source, target, _ in map(volume_parts, COMMON["volumes"])
        if target == "/opt/airflow/data"
    )
    assert source == f"{data_source}/warehouse"
    assert COMMON["environment"]["WAREHOUSE_DIR"] == "/opt/airflow/data/warehouse"
    # its own metadata lives in a named volume, never in the warehouse folder
    assert mounts[env["BI_HOME"]] == ("superset-home-volume", None)
    assert "superset-home-volume" in COMPOSE["volumes"]


def test_superset_is_built_from_the_bi_lock_and_health_checked_on_its_port():
    assert SUPERSET["build"] == {"context": "./bi", "dockerfile": "Dockerfile"}
    dockerfile = (BI_DIR / "Dockerfile").read_text()
    assert "--require-hashes" in dockerfile
    assert "-r /opt/customer_marts/bi/requirements.lock" in dockerfile
    args = dict(re.findall(r"^ARG (\w+)=(\S+)$", dockerfile, re.M))
    assert args["PYTHON_VERSION"] == f"{sys.version_info.major}.{sys.version_info.minor}"
    command = re.search(r"^CMD (\[.*\])$", dockerfile, re.M).group(1)
    command = yaml.safe_load(command)
    assert command[command.index("--host") + 1] == "0.0.0.0"
    port = command[command.index("--port") + 1]
    assert SUPERSET["ports"] == [f"127.0.0.1:${{SUPERSET_PORT:-8088}}:{port}"]
    health = SUPERSET["healthcheck"]["test"]
    assert health[0] == "CMD"
    assert f"http://localhost:{port}/health" in " ".join(health)
    # the image's environment points the setup at the mounts above
    env = dict(re.findall(r"^\s+(BI_HOME|WAREHOUSE_DIR)=(\S+)", dockerfile, re.M))
    assert env == {
        "BI_HOME": SUPERSET["environment"]["BI_HOME"],
        "WAREHOUSE_DIR": SUPERSET["environment"]["WAREHOUSE_DIR"],
    }


def test_bi_dockerignore_sends_only_what_bi_dockerfile_copies():
    copied, allowed = copied_and_allowed(BI_DIR)
    assert copied == allowed
    assert all((BI_DIR / name).exists() for name in copied)


def test_superset_secrets_come_only_from_env():
    env = SUPERSET["environment"]
    for key in ("SUPERSET_SECRET_KEY", "SUPERSET_ADMIN_PASSWORD"):
        assert INTERPOLATION.fullmatch(env[key]), f"{key} has a literal value"
    assert default_of(env["SUPERSET_SECRET_KEY"]) == ""  # generated into the volume
    example = env_example()
    assert example["SUPERSET_SECRET_KEY"] == example["SUPERSET_ADMIN_PASSWORD"] == ""


SPARK_SERVICES = {"spark-master", "spark-worker", "spark-thrift"}


def test_the_spark_cluster_runs_only_in_the_spark_profile():
    assert enabled_services({"spark"}) == CORE | SPARK_SERVICES
    assert not SPARK_SERVICES & enabled_services({"celery", "flower", "bi"})
    assert all(SERVICES[name]["restart"] == "always" for name in SPARK_SERVICES)


def test_the_spark_services_use_the_official_image_at_the_pinned_pyspark_s_line():
    locked = re.search(
        r"^pyspark==(\d+)\.(\d+)\.",
        (PROJECT_ROOT / "spark" / "requirements.lock").read_text(),
        re.M,
    )
    images = {SERVICES[name]["image"] for name in SPARK_SERVICES}
    assert len(images) == 1
    tag = default_of(images.pop().removeprefix("apache/spark:"))
    assert tag.startswith(f"{locked.group(1)}.{locked.group(2)}.") and "java17" in tag
    assert "python3" in tag  # the health checks run python3
    assert env_example()["SPARK_IMAGE_TAG"] == tag


def test_the_worker_and_the_thrift_server_join_the_master_and_share_the_warehouse():
    master = "spark://spark-master:7077"
    assert SERVICES["spark-master"]["command"][1] == "org.apache.spark.deploy.master.Master"
    assert SERVICES["spark-worker"]["command"][-1] == master
    thrift = SERVICES["spark-thrift"]["command"]
    # spark-submit itself (it execs Java): the server is the container's process
    assert thrift[:3] == [
        "/opt/spark/bin/spark-submit",
        "--class",
        "org.apache.spark.sql.hive.thriftserver.HiveThriftServer2",
    ]
    assert thrift[thrift.index("--master") + 1] == master
    assert "spark-internal" in thrift
    # the warehouse in the image's working folder, which belongs to its user (spark): a
    # new volume mounted there takes that owner, a new folder elsewhere would be root's
    assert "spark.sql.warehouse.dir=/opt/spark/work-dir/warehouse" in thrift
    for name in ("spark-worker", "spark-thrift"):
        mounts = {
            target: source for source, target, _ in map(volume_parts, SERVICES[name]["volumes"])
        }
        assert mounts == {"/opt/spark/work-dir": "spark-data-volume"}
    assert SERVICES["spark-thrift"]["depends_on"] == {
        "spark-master": {"condition": "service_healthy"},
        "spark-worker": {"condition": "service_healthy"},
    }
    assert "spark-data-volume" in COMPOSE["volumes"]


def test_the_spark_ports_listen_on_the_loopback_only_and_are_health_checked():
    ports = {name: SERVICES[name].get("ports", []) for name in SPARK_SERVICES}
    assert ports["spark-master"] == ["127.0.0.1:${SPARK_MASTER_UI_PORT:-8090}:8080"]
    assert ports["spark-thrift"] == ["127.0.0.1:${SPARK_THRIFT_PORT:-10000}:10000"]
    assert ports["spark-worker"] == []
    for name, port in (("spark-master", 8080), ("spark-worker", 8081), ("spark-thrift", 10000)):
        check = " ".join(SERVICES[name]["healthcheck"]["test"])
        assert str(port) in check, name
