"""Publish: write-audit-publish of the validated marts (wap), the kept versions and
rollback, the Parquet export, and the atomic file operations they share."""
