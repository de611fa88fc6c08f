"""Superset's configuration for the Customer Marts dashboard (docs/publishing.md, "BI dashboard (Superset)").

Superset loads this file through SUPERSET_CONFIG_PATH, which bi/superset_setup.py
(`make bi`, the tests) and bi/Dockerfile set. Everything instance-specific comes from
the environment:

  BI_HOME              where the SQLite metadata database lives (default data/bi)
  SUPERSET_SECRET_KEY  signs sessions and encrypts stored secrets; superset_setup.py
                       generates one into $BI_HOME/secret_key when it is not set
"""

import os
from pathlib import Path

BI_HOME = Path(os.environ.get("BI_HOME", Path(__file__).resolve().parent.parent / "data" / "bi"))

SECRET_KEY = os.environ["SUPERSET_SECRET_KEY"]
SQLALCHEMY_DATABASE_URI = f"sqlite:///{BI_HOME / 'superset.db'}?check_same_thread=false"

# No query-result cache: every chart query reads the version of published.duckdb that
# is published at that moment (the database connection uses NullPool, Superset's
# default, so each query opens the file anew and sees a new publish at once).
DATA_CACHE_CONFIG = {"CACHE_TYPE": "NullCache"}
CACHE_CONFIG = {"CACHE_TYPE": "NullCache"}

# Plain HTTP on loopback (or behind a proxy that terminates TLS): Superset's default
# Content-Security-Policy (Talisman) stays on, HTTPS is not forced, cookies not Secure.
SESSION_COOKIE_SECURE = False
