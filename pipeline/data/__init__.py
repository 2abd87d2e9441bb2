"""The pipeline's own configuration, shipped as package data and read with :mod:`importlib.resources`:
the AF LSF calibration table (``lsf_af.csv``, written by ``make_lsf_table.py``), the HK limit table
(``hk_limits.toml``) and the science-alert thresholds (``alerts.toml``).

They belong to the system under test, not to the harness's ``datasets/``: a pipeline installed from a
wheel finds them wherever it is installed.
"""

from __future__ import annotations

from importlib.resources import files
from importlib.resources.abc import Traversable


def packaged(name: str) -> Traversable:
    """The configuration file ``name`` of this package (``lsf_af.csv``, ``hk_limits.toml``, ``alerts.toml``)."""
    return files(__name__).joinpath(name)
