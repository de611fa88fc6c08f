"""Provision and start Superset over the published warehouse (`make bi`;
docs/publishing.md, "BI dashboard (Superset)").

Superset runs from its own virtual environment (BI_VENV, default .venv-bi, installed from
bi/requirements.lock): it pins SQLAlchemy 1.4 and cannot share Airflow's. This module only
drives its command line, so it runs with either environment's Python:

1. `superset db upgrade`: creates or migrates the SQLite metadata in BI_HOME;
2. bi/provision_app.py, in one Superset process: roles and permissions (`superset init`),
   the admin from SUPERSET_ADMIN_USER / SUPERSET_ADMIN_PASSWORD (created, or its password
   reset), and the YAML bundle in bi/superset/ (Superset's export format, version 1),
   zipped here with the database connection pointed at $WAREHOUSE_DIR/published.duckdb
   (read-only; Superset opens it with NullPool, so each query reads the version published
   at that moment), imported over what Superset holds;
3. `superset run` on 127.0.0.1, port SUPERSET_PORT (gunicorn in the container).
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

BI_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = BI_DIR.parent
BUNDLE_DIR = BI_DIR / "superset"
CONFIG_FILE = BI_DIR / "superset_config.py"
URI_PLACEHOLDER = "__PUBLISHED_DUCKDB_URI__"
DASHBOARD_SLUG = "customer-marts"
DASHBOARD_PATH = f"/superset/dashboard/{DASHBOARD_SLUG}/"
DEFAULT_PORT = 8088
DEFAULT_USER = "admin"
DEFAULT_PASSWORD = "admin"  # local loopback default; set SUPERSET_ADMIN_PASSWORD elsewhere


class SetupError(RuntimeError):
    """A Superset command failed; the message names the command and its last output lines."""


def venv_dir() -> Path:
    return Path(os.environ.get("BI_VENV", PROJECT_ROOT / ".venv-bi"))


def superset_bin(venv: Path | None = None) -> Path:
    return (venv or venv_dir()) / "bin" / "superset"


def published_uri(warehouse_dir: Path) -> str:
    """The SQLAlchemy URL of published.duckdb, read-only (docs/publishing.md, "Connection recipes")."""
    path = (Path(warehouse_dir) / "published.duckdb").resolve()
    return f"duckdb:///{path}?access_mode=read_only"


def secret_key(bi_home: Path) -> str:
    """SUPERSET_SECRET_KEY, or one generated once and kept in BI_HOME/secret_key."""
    if os.environ.get("SUPERSET_SECRET_KEY"):
        return os.environ["SUPERSET_SECRET_KEY"]
    path = bi_home / "secret_key"
    if not path.exists():
        bi_home.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(42))
        path.chmod(0o600)
    return path.read_text().strip()


def superset_env(bi_home: Path, venv: Path | None = None) -> dict[str, str]:
    """The environment every Superset command of this instance runs with."""
    bin_dir = str((venv or venv_dir()) / "bin")
    env = {key: value for key, value in os.environ.items() if not key.startswith("VIRTUAL_ENV")}
    env.update(
        SUPERSET_CONFIG_PATH=str(CONFIG_FILE),
        BI_HOME=str(bi_home),
        SUPERSET_HOME=str(bi_home),
        SUPERSET_SECRET_KEY=secret_key(bi_home),
        FLASK_APP="superset.app:create_app()",
        PATH=bin_dir + os.pathsep + env.get("PATH", "/usr/bin:/bin"),
        PYTHONWARNINGS="ignore",
    )
    return env


def write_bundle(warehouse_dir: Path, dest: Path) -> Path:
    """bi/superset/ as the zip `superset import-dashboards` reads, pointed at warehouse_dir."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    uri = published_uri(warehouse_dir)
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as bundle:
        for path in sorted(BUNDLE_DIR.rglob("*.yaml")):
            text = path.read_text()
            if URI_PLACEHOLDER in text:
                text = text.replace(URI_PLACEHOLDER, uri)
            bundle.writestr(f"customer_marts/{path.relative_to(BUNDLE_DIR)}", text)
    return dest


def _bin(env: dict[str, str], name: str) -> str:
    return str(Path(env["PATH"].split(os.pathsep)[0]) / name)


def _python(env: dict[str, str]) -> str:
    return _bin(env, "python")


def _run(env: dict[str, str], command: list[str], what: str, timeout: float = 600) -> str:
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    output = result.stdout + result.stderr
    if result.returncode != 0:
        tail = "\n".join(output.strip().splitlines()[-15:])
        raise SetupError(f"Superset {what} failed (exit {result.returncode}):\n{tail}")
    return output


def _superset(env: dict[str, str], *args: str) -> str:
    return _run(env, [_bin(env, "superset"), *args], f"`superset {' '.join(args[:2])}`")


def provision(
    bi_home: Path,
    warehouse_dir: Path,
    user: str = DEFAULT_USER,
    password: str = DEFAULT_PASSWORD,
    venv: Path | None = None,
) -> dict[str, str]:
    """Metadata, admin, roles and the dashboard; returns the instance's environment."""
    bi_home = Path(bi_home).resolve()
    bi_home.mkdir(parents=True, exist_ok=True)
    env = superset_env(bi_home, venv)
    _superset(env, "db", "upgrade")
    bundle = write_bundle(warehouse_dir, bi_home / "customer_marts_dashboard.zip")
    command = [_python(env), str(BI_DIR / "provision_app.py"), str(bundle), user]
    _run({**env, "SUPERSET_ADMIN_PASSWORD": password}, command, "provisioning")
    return env


def start(
    env: dict[str, str], port: int, host: str = "127.0.0.1", server: str = "flask", **popen
) -> subprocess.Popen:
    """Superset on host:port: Flask's threaded server (`superset run`), or gunicorn (the
    container); call wait_healthy before using it."""
    if server == "gunicorn":
        command = [
            _bin(env, "gunicorn"),
            "--workers=2",
            "--worker-class=gthread",
            "--threads=4",
            "--timeout=120",
            f"--bind={host}:{port}",
            "superset.app:create_app()",
        ]
    else:
        command = [_bin(env, "superset"), "run", "-h", host, "-p", str(port), "--with-threads"]
    return subprocess.Popen(command, env=env, **popen)


def wait_healthy(base_url: str, process: subprocess.Popen, timeout: float = 180) -> None:
    """Until GET /health answers OK; fails at once if the server process exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SetupError(f"Superset exited with {process.returncode} before it was healthy")
        try:
            with urllib.request.urlopen(f"{base_url}/health", timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(1)
    raise SetupError(f"Superset did not answer {base_url}/health within {timeout:.0f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("SUPERSET_PORT", DEFAULT_PORT))
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (container: 0.0.0.0)"
    )
    parser.add_argument("--server", choices=["flask", "gunicorn"], default="flask")
    parser.add_argument(
        "--provision-only", action="store_true", help="set up and import, do not start"
    )
    args = parser.parse_args(argv)
    bi_home = Path(os.environ.get("BI_HOME", PROJECT_ROOT / "data" / "bi"))
    warehouse = Path(os.environ.get("WAREHOUSE_DIR", PROJECT_ROOT / "data" / "warehouse"))
    user = os.environ.get("SUPERSET_ADMIN_USER", DEFAULT_USER)
    password = os.environ.get("SUPERSET_ADMIN_PASSWORD", DEFAULT_PASSWORD)
    if not superset_bin().exists():
        print(f"No Superset in {venv_dir()}: run `make bi` (it installs bi/requirements.lock)")
        return 1
    if not (warehouse / "published.duckdb").exists():
        print(
            f"Note: {warehouse / 'published.duckdb'} does not exist yet: the charts will show "
            "an error until a run publishes (`make run`)."
        )
    print(f"Provisioning Superset in {bi_home} (metadata, admin, dashboard)...", flush=True)
    try:
        env = provision(bi_home, warehouse, user, password)
    except SetupError as error:
        print(error, file=sys.stderr)
        return 1
    if args.provision_only:
        return 0
    base_url = f"http://127.0.0.1:{args.port}"
    process = start(env, args.port, args.host, args.server)
    try:
        wait_healthy(base_url, process)
        print(
            f"\nSuperset is up: {base_url}{DASHBOARD_PATH}\n"
            f"Log in as {user!r} with the password in SUPERSET_ADMIN_PASSWORD"
            f"{' (local default: admin)' if 'SUPERSET_ADMIN_PASSWORD' not in os.environ else ''}.\n"
            f"Reading {warehouse / 'published.duckdb'} (read-only). Ctrl-C stops.\n",
            flush=True,
        )
        return process.wait()
    except KeyboardInterrupt:
        process.terminate()
        return process.wait(timeout=30)
    except SetupError as error:
        print(error, file=sys.stderr)
        process.terminate()
        return 1


if __name__ == "__main__":
    sys.exit(main())
