"""Customer Marts: the nightly pipeline's Python code (ingest, quality gate, dbt, CLV,
publish, report), imported by the DAG, the scripts and the tests."""
