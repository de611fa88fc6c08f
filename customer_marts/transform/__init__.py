"""The transform step: dbt build of the project (the runner), its test results as check
results, and the dbt docs site. It does not import the quality gate."""
