"""Population-wide, set-based work (coverage, contact finding over check-ins, code recomputation).

Everything here runs as SQL in the database or DuckDB over Parquet/Arrow, never as a Python loop over people, and is
written as functions of (database or dataset, parameters) -> rows so that a distributed engine can take a query over.
"""
