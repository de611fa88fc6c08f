"""The run record and the steps: every writer of the audit tables, the steps the DAG
calls (pipeline), the step lock, the fallback outcome file, `make run`'s summary and
the failure alerts."""
