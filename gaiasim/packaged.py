"""The harness's own data: dataset levels, fault plans, campaigns, compare tolerances and runbooks.

They live in the repository's ``datasets/`` folder and ship in the wheel as package data
(``gaiasim/datasets``, mapped in pyproject.toml), so an installed ``gaiasim`` names them as a checkout does:
``gaiasim generate small --faults corrupted_link``.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from gaiasim.spec import SpecError


def _datasets() -> Path:
    shipped = files("gaiasim") / "datasets"
    if shipped.is_dir():  # an installed wheel
        return Path(str(shipped))
    return Path(__file__).resolve().parents[1] / "datasets"  # a source checkout (editable install, tests)


#: The harness's data folder: ``levels/``, ``faults/``, ``campaigns/``, ``compare/``, ``runbooks/``.
DATASETS = _datasets()


def names(kind: str) -> list[str]:
    """The names of the TOML files of ``DATASETS/kind`` (``levels``, ``faults``, ``campaigns``)."""
    return sorted(p.stem for p in (DATASETS / kind).glob("*.toml"))


def named(kind: str, name: str) -> Path:
    """``DATASETS/kind/<name>.toml``; a :class:`SpecError` listing the known names when there is none."""
    path = DATASETS / kind / f"{name}.toml"
    if not path.is_file():
        what = {"levels": "dataset level", "faults": "fault plan", "campaigns": "campaign"}.get(kind, kind)
        raise SpecError(f"unknown {what} {name!r}; known: {', '.join(names(kind))}")
    return path


def file_or_named(kind: str, given: str | Path) -> Path:
    """``given`` if it is a file, else the packaged TOML of that name (a bare name: no folder, no suffix)."""
    path = Path(given)
    if path.is_file() or len(path.parts) > 1 or path.suffix:
        return path
    try:
        return named(kind, str(given))
    except SpecError as exc:
        raise SpecError(f"{exc} (or give the path of a TOML file)") from None
