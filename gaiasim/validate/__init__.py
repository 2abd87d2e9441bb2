"""Validation: checks as data (DuckDB SQL against the run and its dataset's truth)."""
