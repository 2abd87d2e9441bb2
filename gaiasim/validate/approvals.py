"""Reviewed baselines: a difference between a candidate and its baseline is accepted only once approved.

``gaiasim compare BASELINE CANDIDATE --json DIFF`` writes the differences with the content hash of each
side (:func:`gaiasim.compare.run_sha256`) and of the differences themselves; ``gaiasim baseline approve
DIFF --reason TEXT`` records who (``$GAIASIM_APPROVER``, else the login name), when, why and those three
hashes in the results database (table ``approvals``). A later comparison with the same three hashes is
approved: it exits 0 and says by whom; any other difference fails until it is reviewed. As STScI's
regression tests "okify" a new baseline, nothing changes without a name and a reason on record.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import duckdb

from gaiasim.validate import history
from pipeline.io import InputError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS approvals (
    approved_at TIMESTAMP, approved_by VARCHAR, reason VARCHAR,
    baseline_run VARCHAR, candidate_run VARCHAR, baseline_sut VARCHAR, candidate_sut VARCHAR,
    baseline_sha256 VARCHAR, candidate_sha256 VARCHAR, differences_sha256 VARCHAR, tables VARCHAR
)
"""
_KEYS = ("baseline", "candidate", "differences_sha256", "tables", "differs")


@dataclass(frozen=True)
class Approval:
    approved_at: dt.datetime  # UTC
    approved_by: str
    reason: str
    baseline_run: str
    candidate_run: str
    baseline_sut: str | None
    candidate_sut: str | None
    baseline_sha256: str
    candidate_sha256: str
    differences_sha256: str
    tables: str  # the tables that differ, comma-separated

    def line(self) -> str:
        return (f"approved by {self.approved_by} on {self.approved_at:%Y-%m-%d %H:%M} UTC: {self.reason} "
                f"({self.tables})")

    def to_json(self) -> dict:
        return {**self.__dict__, "approved_at": self.approved_at.isoformat(timespec="seconds")}


def approver() -> str:
    """Who approves: ``$GAIASIM_APPROVER`` (a CI job's reviewer), else the login name."""
    return os.environ.get("GAIASIM_APPROVER") or getpass.getuser()


def read_diff(path: Path) -> dict:
    """A comparison written by ``gaiasim compare --json``; one clear line when it is not one."""
    try:
        diff = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise InputError(f"comparison {path} not found; write it with 'gaiasim compare BASELINE CANDIDATE --json "
                         f"{path}'") from None
    except (json.JSONDecodeError, UnicodeDecodeError, IsADirectoryError) as exc:
        raise InputError(f"{path} is not a comparison written by 'gaiasim compare --json' ({exc})") from None
    if not isinstance(diff, dict) or any(k not in diff for k in _KEYS) \
            or not all(isinstance(diff[side], dict) and "sha256" in diff[side] for side in ("baseline", "candidate")):
        raise InputError(f"{path} is not a comparison written by 'gaiasim compare --json' of this version (no "
                         "hashes of the two sides); compare the runs again")
    from gaiasim.compare import differences_sha256

    if differences_sha256(diff) != diff["differences_sha256"]:
        raise InputError(f"{path} was edited after 'gaiasim compare' wrote it (its differences no longer match "
                         "their hash); compare the runs again")
    return diff


def _row(diff: Mapping, who: str, reason: str, when: dt.datetime) -> list:
    tables = ",".join(sorted(name for name, t in diff["tables"].items() if t.get("differs")))
    b, c = diff["baseline"], diff["candidate"]
    return [when, who, reason, b.get("run"), c.get("run"), b.get("sut"), c.get("sut"), b["sha256"], c["sha256"],
            diff["differences_sha256"], tables]


def approve(db_path: Path, diff: Mapping, reason: str, who: str | None = None) -> Approval:
    """Record the approval of ``diff`` (read by :func:`read_diff`) in the results database."""
    if not reason or not reason.strip():
        raise InputError("an approval needs a reason: gaiasim baseline approve DIFF --reason \"why the "
                         "difference is right\"")
    if not diff["differs"]:
        raise InputError("the two runs agree within tolerance: there is no difference to approve")
    row = _row(diff, who or approver(), reason.strip(), dt.datetime.now(dt.UTC).replace(tzinfo=None))
    db_path = Path(db_path)
    db_path.parent.mkdir(parents=True, exist_ok=True)
    con = history.connect_when_free(db_path)
    try:
        con.execute(_SCHEMA)
        con.execute(f"INSERT INTO approvals VALUES ({', '.join('?' * len(row))})", row)
    finally:
        con.close()
    return Approval(*row)


def _query(db_path: Path, where: str, params: list) -> list[Approval]:
    if not Path(db_path).is_file():
        return []
    con = history.connect_when_free(Path(db_path))
    try:
        con.execute(_SCHEMA)
        rows = con.execute(f"SELECT * FROM approvals WHERE {where} ORDER BY approved_at DESC", params).fetchall()
    except duckdb.Error as exc:
        raise InputError(f"cannot read the approvals in {db_path}: {str(exc).splitlines()[0]}") from None
    finally:
        con.close()
    return [Approval(*r) for r in rows]


def find(db_path: Path, diff: Mapping) -> Approval | None:
    """The latest approval of these very differences between these very two sides, if any."""
    found = _query(db_path, "baseline_sha256 = ? AND candidate_sha256 = ? AND differences_sha256 = ?",
                   [diff["baseline"]["sha256"], diff["candidate"]["sha256"], diff["differences_sha256"]])
    return found[0] if found else None


def for_run(db_path: Path, run_dir: Path) -> list[Approval]:
    """Every approval of a comparison in which ``run_dir`` was the baseline or the candidate, latest first."""
    run = str(Path(run_dir).resolve())
    return _query(db_path, "candidate_run = ? OR baseline_run = ?", [run, run])


def listing(db_path: Path) -> list[Approval]:
    """Every approval on record, latest first."""
    return _query(db_path, "true", [])
