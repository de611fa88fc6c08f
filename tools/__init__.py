"""Tooling around the product: the demo data and the local Airflow environment.

Never imported by `customer_marts` or `dags` (tests/unit/tools/test_boundaries.py
checks it); the scripts and the tests use it.
"""
