# The official Airflow image plus the project's pinned dependencies and package.
# Keep AIRFLOW_VERSION equal to the apache-airflow pin in requirements.lock
# (tests/unit/test_compose.py checks it): pip then leaves Airflow itself alone.
ARG AIRFLOW_VERSION=3.3.2
ARG PYTHON_VERSION=3.11
FROM apache/airflow:${AIRFLOW_VERSION}-python${PYTHON_VERSION}

# The runtime lock first: this layer is rebuilt only when the dependencies change.
# requirements-dev.lock (pytest, ruff, lifetimes, MkDocs) never enters the image.
# --require-hashes: every package is the one `make lock` resolved. `pip check`
# fails the build if the lock conflicts with a provider shipped in the image
# (fab, celery, postgres), instead of failing at run time.
COPY --chown=airflow:root requirements.lock /opt/customer_marts/requirements.lock
RUN pip install --no-cache-dir --require-hashes -r /opt/customer_marts/requirements.lock \
    && pip check

COPY --chown=airflow:root pyproject.toml README.md /opt/customer_marts/
COPY --chown=airflow:root customer_marts /opt/customer_marts/customer_marts
# The demo generator, for airflow-init's CUSTOMER_MARTS_DEMO_DATA=true (bench/ stays out).
COPY --chown=airflow:root tools /opt/customer_marts/tools
RUN pip install --no-cache-dir --no-deps /opt/customer_marts
