"""The quality gate: Great Expectations suites on the build database (validate), the
persisted-connection patch GE needs on DuckDB (gx_duckdb), the suites and their run
parameters (suites), and what a check that did not pass says (messages)."""
