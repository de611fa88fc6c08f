"""Airflow on this machine: the environment of an `airflow` command (`make run`, tests,
benchmarks) and the three long-running components on 127.0.0.1 (`make airflow`, the
scheduler test).

`LocalAirflow` starts `airflow api-server`, `airflow scheduler` and `airflow
dag-processor`, each in its own process group with its own log file in AIRFLOW_HOME
(`api-server.log`, `scheduler.log`, `dag-processor.log`), so a failure points at the
component and stopping is exact: SIGTERM to each group, then SIGKILL to whatever is
left of it after a grace period (a LocalExecutor worker, a uvicorn child).

LocalExecutor on SQLite: Airflow 3 removed the SequentialExecutor and allows the
LocalExecutor on SQLite (`airflow standalone` itself runs that pair); the components
share the one SQLite file, which is fine at one DAG's load. The scheduler runs with
`--skip-serve-logs`: the log server would listen on every interface, and the
api-server reads task logs from the shared AIRFLOW_HOME instead.

Login: Airflow's simple auth manager (its default). On first start the api-server
generates a password for each user of `[core] simple_auth_manager_users` (here
`admin:admin` unless the environment says otherwise) and writes it to
`simple_auth_manager_passwords.json.generated` in AIRFLOW_HOME (or
`[core] simple_auth_manager_passwords_file`); `LocalAirflow.logins` reads it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from customer_marts.config import PROJECT_ROOT

HOST = "127.0.0.1"
COMPONENTS = {
    "api-server": ["api-server", "--host", HOST, "--port", "{port}", "--workers", "1"],
    "scheduler": ["scheduler", "--skip-serve-logs"],
    "dag-processor": ["dag-processor"],
}
SIMPLE_AUTH_MANAGER = (
    "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
)
DEFAULT_USERS = "admin:admin"
# What the calling environment may change: the users, and the LocalExecutor's worker
# processes (it starts them all at once; Airflow's default of 32 takes ~4 GB, and the
# DAG runs one task at a time).
DEFAULTS = {
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": DEFAULT_USERS,
    "AIRFLOW__CORE__PARALLELISM": "4",
}
PASSWORDS_FILE = "simple_auth_manager_passwords.json.generated"
AIRFLOW = str(Path(sys.executable).parent / "airflow")

T = TypeVar("T")


def local_airflow_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of an `airflow` command run on this machine (`make run`, tests,
    benchmarks): the project's DAGs, SQLite metadata in `home`, no example DAGs."""
    return {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        **extra,
    }


def port_in_use(port: int, host: str = HOST) -> bool:
    """Whether something listens on host:port (a port left in TIME_WAIT by a server
    that has stopped counts as free, as it does for the api-server's own bind)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def http_json(url: str, timeout: float = 5.0) -> dict | None:
    """The JSON body of a GET answered with 200, else None (not up yet, refused, ...)."""
    import httpx  # imported here: `make airflow --help` stays fast

    try:
        response = httpx.get(url, timeout=timeout)
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    try:
        return response.json()
    except ValueError:
        return None


class ComponentExited(RuntimeError):
    """An Airflow component ended while it should be running; the message has its log."""


@dataclass
class LocalAirflow:
    """The api-server, the scheduler and the dag-processor of one AIRFLOW_HOME."""

    home: Path
    port: int
    env: dict[str, str]
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    @classmethod
    def configure(cls, home: Path, port: int, **extra: str) -> LocalAirflow:
        """The components' environment: `local_airflow_env` plus the LocalExecutor, the
        simple auth manager, 4 worker processes and the URLs of this port (the UI's links,
        the execution API the workers report to). `extra` (and the calling environment,
        for the users and the workers: DEFAULTS) overrides. The JWT secret is the one
        `airflow db migrate` writes into airflow.cfg, shared by every component of this
        home."""
        base = f"http://{HOST}:{port}"
        env = local_airflow_env(
            home,
            AIRFLOW__CORE__EXECUTOR="LocalExecutor",
            AIRFLOW__CORE__AUTH_MANAGER=SIMPLE_AUTH_MANAGER,
            **{key: os.environ.get(key, value) for key, value in DEFAULTS.items()},
            AIRFLOW__API__HOST=HOST,
            AIRFLOW__API__PORT=str(port),
            AIRFLOW__API__BASE_URL=base,
            AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"{base}/execution/",
            **extra,
        )
        return cls(home=home, port=port, env=env)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def passwords_file(self) -> Path:
        configured = self.env.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE")
        return Path(configured) if configured else self.home / PASSWORDS_FILE

    def logins(self) -> dict[str, str]:
        """Each configured user and its password (from the passwords file; "" if absent)."""
        users = [
            entry.split(":")[0].strip()
            for entry in self.env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"].split(",")
            if entry.strip()
        ]
        try:
            passwords = json.loads(self.passwords_file.read_text() or "{}")
        except (OSError, ValueError):
            passwords = {}
        return {user: passwords.get(user, "") for user in users}

    def migrate(self) -> None:
        """Create or upgrade the SQLite metadata (and airflow.cfg on first use)."""
        self.home.mkdir(parents=True, exist_ok=True)
        with (self.home / "db-migrate.log").open("wb") as log:
            result = subprocess.run(
                [AIRFLOW, "db", "migrate"], env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        if result.returncode != 0:
            raise ComponentExited(
                f"`airflow db migrate` failed (exit {result.returncode}):\n"
                + self.log_tail("db-migrate")
            )

    def start(self) -> None:
        for name, args in COMPONENTS.items():
            log = (self.home / f"{name}.log").open("ab")
            self.processes[name] = subprocess.Popen(
                [AIRFLOW, *(arg.format(port=self.port) for arg in args)],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() ends its children too
            )
            log.close()  # the child holds its own descriptor

    def log_tail(self, name: str, chars: int = 3000) -> str:
        path = self.home / f"{name}.log"
        text = path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)"
        return f"--- {path} ---\n{text}"

    def logs(self) -> str:
        """The tail of every component's log, for messages."""
        return "\n".join(self.log_tail(name) for name in self.processes)

    def exited(self) -> dict[str, int]:
        return {n: p.returncode for n, p in self.processes.items() if p.poll() is not None}

    def check_alive(self) -> None:
        if dead := self.exited():
            names = ", ".join(f"{name} (exit {code})" for name, code in dead.items())
            raise ComponentExited(
                f"Airflow stopped: {names}\n" + "\n".join(self.log_tail(n) for n in dead)
            )

    def wait_for(self, what: str, probe: Callable[[], T], seconds: float, every=1.0) -> T:
        """The first true result of probe(), checking every component stays alive."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.check_alive()
            if result := probe():
                return result
            time.sleep(every)
        raise TimeoutError(f"timed out after {seconds:.0f} s waiting for {what}\n{self.logs()}")

    def health(self) -> dict | None:
        return http_json(f"{self.url}/api/v2/monitor/health")

    def healthy(self) -> bool:
        """The api-server answers its health endpoint, and there the metadata database,
        the scheduler and the dag-processor (by their heartbeats) are healthy."""
        body = self.health() or {}
        parts = ("metadatabase", "scheduler", "dag_processor")
        return all((body.get(part) or {}).get("status") == "healthy" for part in parts)

    def wait_healthy(self, seconds: float) -> None:
        self.wait_for(f"a healthy api-server on {self.url}", self.healthy, seconds)

    def stop(self, grace: float = 20.0) -> None:
        """SIGTERM each process group, wait up to `grace` seconds, then SIGKILL every
        group: the processes a component leaves behind even when it exits cleanly too."""
        for process in self.processes.values():
            if process.poll() is None:
                _signal_group(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for process in self.processes.values():
            _signal_group(process.pid, signal.SIGKILL)
            process.wait()
        groups = {process.pid for process in self.processes.values()}
        deadline = time.monotonic() + 10
        while _group_members(groups) and time.monotonic() < deadline:
            time.sleep(0.1)  # killed children end asynchronously; then their sockets close

    def __enter__(self) -> LocalAirflow:
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()


def _group_members(pgids: set[int]) -> list[int]:
    """The live processes (zombies aside) of these process groups."""
    import psutil  # an Airflow dependency

    members = []
    for process in psutil.process_iter(["status"]):
        try:
            if os.getpgid(process.pid) in pgids and process.info["status"] != "zombie":
                members.append(process.pid)
        except (ProcessLookupError, psutil.Error):
            continue
    return members


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        pass
