# The official Airflow 3.3 image plus the project's pinned dependencies and package.
FROM apache/airflow:3.3.2-python3.11
COPY --chown=airflow:root requirements.lock pyproject.toml README.md /opt/customer_marts/
COPY --chown=airflow:root customer_marts /opt/customer_marts/customer_marts
RUN pip install --no-cache-dir -r /opt/customer_marts/requirements.lock \
    && pip install --no-cache-dir --no-deps /opt/customer_marts
