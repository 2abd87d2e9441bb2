"""gaiasim: simulation and validation harness for a Gaia-like daily telemetry pipeline.

Subpackages: ``gaiasim.sim`` (the simulator), ``gaiasim.validate`` (checks against truth); modules
``spec`` (dataset specs), ``dataset`` (dataset folders), ``workspace`` (cached datasets and runs),
``demo`` and ``cli`` (the ``gaiasim`` command). The system under test is the ``pipeline`` package.

A run's tables in Python, ids exact: ``gaiasim.read_table(run_dir, name, backend="arrow"|"pandas"|"polars")``
and ``gaiasim.open_catalog(run_dir)`` (``gaiasim.tables``, docs/clients.md).
"""

from typing import Any

_TABLES = ("read_table", "open_catalog")


def __getattr__(name: str) -> Any:
    # Imported when first asked for: ``import gaiasim`` (every command) does not load pyarrow.dataset.
    if name in _TABLES:
        from gaiasim import tables

        return getattr(tables, name)
    raise AttributeError(f"module 'gaiasim' has no attribute {name!r}")
