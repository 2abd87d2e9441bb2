"""The one place gaiasim opens DuckDB: a run's tables plus its dataset's truth, as views.

``gaiasim query`` and ``gaiasim validate`` both use :func:`connect`. Views:

- run tables: ``transits``, ``ccd``, ``quarantine``, ``gaps``, ``hk`` (pipeline.schemas); ``latency``
  (watch mode's, empty for a batch run)
- ``run_counts(key, value)``: the per-stage counts of run.json; ``run_inputs(name, sha256)``: its inputs
- ``dataset_files(name, manifest_sha256, actual_sha256)``: the dataset's files against its manifest
- truth (when the run's dataset is at hand): ``truth_sources``, ``truth_transits``, ``truth_ccd``,
  ``truth_faults``, ``truth_catalogue_links`` (each catalogue entry's truth sources: the only way from a
  run's catalogue source_id to the truth), ``truth_source_physics`` and ``truth_sky_pixels`` (the galaxy
  sky's per-star truth and materialised pixels; empty for the toy sky), ``truth_artefacts`` (the on-board
  VPU's ghosts, lost windows and class flips; empty without them), and ``catalogue`` (the reference
  catalogue the pipeline used);
  ``sample_ccd``,
  ``sample_truth_ccd``, ``sample_truth_transits`` and ``sampling``: the CCD-check sample (``_sample_views``),
  and ``sample_pairs``: its run and truth CCD rows joined, as the CCD checks read them
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import duckdb

from gaiasim import dataset as ds
from gaiasim.sim.truth import TRUTH_TABLES
from pipeline import io, schemas, timescale
from pipeline.io import sha256_files
from pipeline.layout import RUN_JSON, parquet_glob, view_sql

#: DuckDB's memory limit for validation and ad-hoc queries; past it DuckDB spills to a folder of this
#: process's own (:func:`spill_folder`). With the Python side (~0.25 GB) a validation then peaks at
#: 1.2-1.4 GiB at any scale: 1.35 GiB and 104-105 s for the full day (71.3 M transits) against 5.97 GiB
#: and 94 s with 8 GB, 1.16 GiB against 1.26-1.45 GiB at scale 1e-2 (``python -m gaiasim.bench --child
#: validate SCALE FOLDER 2``). Set ``GAIASIM_DUCKDB_MEMORY`` (e.g. ``8GB``) on a machine with memory to spare.
DUCKDB_MEMORY_LIMIT = "1GB"
_SPILL: list[tempfile.TemporaryDirectory] = []


def spill_folder() -> str:
    """Where DuckDB spills past its memory limit: a folder of this process's own (two validations at once
    never share spill files), removed when the process ends (also when it is interrupted)."""
    if not _SPILL:
        _SPILL.append(tempfile.TemporaryDirectory(prefix="gaiasim-duckdb-"))
    return _SPILL[0].name
#: CCD rows the statistical CCD checks read at most (a day has 10 per transit: 700 M at full scale).
CCD_ROWS_CHECKED = 20_000_000
#: Transits per true-G bin the photometry checks read at most. Their medians are holistic aggregates,
#: which DuckDB holds in memory whatever its limit: a full-scale day's faint bins hold ~20 M transits each,
#: and the whole day's BP and RP medians and MADs failed at 1 GB. Sampled, a bin keeps between this and
#: twice this many, so its median is known to ~0.001 mag (1.2533 x 0.3 mag / sqrt(250 000) at G = 20, the
#: noisiest bin) against bounds of 0.01 and 0.02 mag.
PHOT_TRANSITS_PER_BIN = 250_000


def read_run_info(run_dir: Path) -> dict:
    """run.json of a finished run: refuses a folder without one, a run still being written (its folder
    locked by ``gaiasim run``) and a run that stopped before it completed."""
    path = Path(run_dir) / RUN_JSON
    try:
        info = json.loads(path.read_text())
    except FileNotFoundError:
        raise io.InputError(
            f"{run_dir} is not a finished run: {RUN_JSON} is missing; run 'gaiasim run' first") from None
    except json.JSONDecodeError as exc:
        raise io.InputError(f"{path} is not valid JSON ({exc}); rerun the pipeline") from None
    status = info.get("status") if isinstance(info, dict) else None
    if io.folder_in_use(run_dir):
        raise io.InputError(f"{run_dir} is not a finished run: 'gaiasim run' is writing it now (status {status}); "
                            "wait for it to finish (a watch: until it stops)")
    if status not in ("complete", "watching"):
        raise io.InputError(f"{run_dir} is not a finished run: it stopped before it completed (status {status}); "
                            "run the same 'gaiasim run' command again to finish it")
    return info


#: Statement types a read-only query refuses (:func:`statements`), and why: the engine's own sandbox
#: (:func:`connect` with ``read_only``) already keeps every file outside the run and its dataset out of
#: reach, but COPY and EXPORT could still write into those two folders.
REFUSED_STATEMENTS = {
    "COPY": "writes files",
    "EXPORT": "writes files",
    "ATTACH": "opens other databases",
    "DETACH": "closes databases",
    "LOAD": "installs or loads extensions",
    "SET": "changes settings",
    "VACUUM": "rewrites storage",
}


def error_line(exc: BaseException) -> str:
    """DuckDB's error message on one line, with its hints ('Did you mean "transits"?', 'Candidate bindings:
    ...') and without the echo of the statement and its caret ('LINE 1: ...', '^^^')."""
    lines = [line.strip() for line in str(exc).splitlines()]
    return " ".join(line for line in lines if line and not line.startswith("LINE ") and set(line) != {"^"})


def statements(sql: str, unrestricted: bool = False) -> list[duckdb.Statement]:
    """The statements of ``sql``, split by DuckDB's own parser (a ';' inside a string is not a split); in
    read-only mode (the default) one :class:`InputError` for a statement that would write files, open
    other databases, load extensions or change settings."""
    found = duckdb.extract_statements(sql)
    if not unrestricted:
        for statement in found:
            why = REFUSED_STATEMENTS.get(statement.type.name)
            if why:
                raise io.InputError(f"{statement.type.name} {why}: gaiasim query is read-only (it reads the run and "
                                    "its dataset, nothing else); pass --unrestricted to allow any SQL")
    return found


#: The macro giving the UTC (TIMESTAMP) of an OBMT, as ``catalog.duckdb`` has it (pipeline.timescale's
#: relation over the dataset's span and an hour each side; NULL outside).
UTC_MACRO = "obmt_utc"


def connect(run_dir: Path, dataset: Path | None = None, read_only: bool = False,
            integrity: bool = True) -> duckdb.DuckDBPyConnection:
    """In-memory DuckDB with views over the run (and its dataset's truth, if found).

    ``integrity``: hash every file of the dataset for ``dataset_files`` (REQ-VAL-001; a minute for a
    full day's 47 GB); without it the table lists the manifest's digests only (``actual_sha256`` NULL).

    ``read_only``: the engine may then read files only inside the run and its dataset, may not write
    files elsewhere, load extensions or change its configuration (DuckDB's ``allowed_directories``,
    ``enable_external_access = false`` and ``lock_configuration``): what ``gaiasim query`` runs, with
    :func:`statements` refusing the statements that would write inside those folders.
    """
    run_dir = Path(run_dir).resolve()
    info = read_run_info(run_dir)
    # Bounded memory at any scale (a full day's truth join holds 70 M transits): DuckDB spills to disk past
    # this limit instead of taking 80 % of the machine.
    memory = os.environ.get("GAIASIM_DUCKDB_MEMORY", DUCKDB_MEMORY_LIMIT)
    con = duckdb.connect(":memory:", config={"memory_limit": memory, "temp_directory": spill_folder()})
    for name in schemas.RUN_TABLES:
        con.execute(view_sql(name, parquet_glob(run_dir / name)))
    if (run_dir / "latency").is_dir():  # watch mode's latencies
        con.execute(view_sql("latency", parquet_glob(run_dir / "latency")))
    else:
        con.register("latency", schemas.LATENCY.empty_table())
    con.execute("CREATE TABLE run_counts (key VARCHAR, value BIGINT)")
    con.executemany("INSERT INTO run_counts VALUES (?, ?)",
                    [(k, int(v)) for k, v in info["counts"].items()])
    con.execute("CREATE TABLE run_inputs (name VARCHAR, sha256 VARCHAR)")
    if info.get("inputs"):
        con.executemany("INSERT INTO run_inputs VALUES (?, ?)", sorted(info["inputs"].items()))
    root = Path(dataset) if dataset else Path(info["dataset"])
    if (root / ds.MANIFEST).is_file():
        # Integrity: every file of the manifest, its recorded and its actual SHA-256 (NULL when missing).
        con.execute("CREATE TABLE dataset_files (name VARCHAR, manifest_sha256 VARCHAR, actual_sha256 VARCHAR)")
        manifest = ds.read_manifest(root)
        files = manifest["files"]
        present = {str(p) for p in ds.data_files(root)}
        hashed = sorted(present) if integrity else []
        actual = dict(zip(hashed, sha256_files([root / name for name in hashed]), strict=True))
        rows = [(name, digest, actual.get(name)) for name, digest in sorted(files.items())]
        rows += [(name, None, actual.get(name)) for name in sorted(present - set(files))]
        if rows:
            con.executemany("INSERT INTO dataset_files VALUES (?, ?, ?)", rows)
        for name in TRUTH_TABLES:
            if name == "catalogue_links" and not (root / "truth" / name).is_dir():
                continue
            if name in ("source_physics", "sky_pixels") and not (root / "truth" / name).is_dir():  # toy sky
                con.register(f"truth_{name}", TRUTH_TABLES[name].empty_table())
                continue
            if name == "artefacts" and not (root / "truth" / name).is_dir():  # no VPU effect (ideal instrument)
                con.register(f"truth_{name}", TRUTH_TABLES[name].empty_table())
                continue
            con.execute(view_sql(f"truth_{name}", parquet_glob(root / "truth" / name)))
        con.execute(view_sql("catalogue", parquet_glob(root / "catalogue")))
        if not (root / "truth" / "catalogue_links").is_dir():
            con.execute(LEGACY_CATALOGUE_LINKS)
        _sample_views(con)
        if "obmt_start_ns" in manifest and "obmt_end_ns" in manifest:  # as in catalog.duckdb: any OBMT in UTC
            relation = timescale.utc_relation((int(manifest["obmt_start_ns"]), int(manifest["obmt_end_ns"])))
            con.execute(f"CREATE MACRO {UTC_MACRO}(obmt_ns) AS {relation.sql('obmt_ns')}")
    if read_only:
        allowed = [str(run_dir)] + ([str(root.resolve())] if (root / ds.MANIFEST).is_file() else [])
        con.execute("SET allowed_directories = ?", [allowed])
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
    return con


#: ``truth_catalogue_links`` of a dataset generated before the catalogue had its own ids (no
#: truth/catalogue_links): its catalogue ids were the truth ids, every entry a single truth source.
LEGACY_CATALOGUE_LINKS = """
    CREATE VIEW truth_catalogue_links AS
    SELECT c.source_id AS catalogue_source_id, s.source_id, CASE WHEN c.source_id IS NULL THEN 'missing'
           ELSE 'single' END AS relation, NULL::FLOAT AS neighbour_sep_arcsec, NULL::FLOAT AS neighbour_delta_g_mag
    FROM truth_sources s LEFT JOIN catalogue c USING (source_id)
"""


def ccd_sampling(ccd_rows: int) -> int:
    """``S``: the CCD-level checks read 1 transit in ``S`` (all of them up to :data:`CCD_ROWS_CHECKED` rows)."""
    return max(1, -(-ccd_rows // CCD_ROWS_CHECKED))


def _sample_views(con: duckdb.DuckDBPyConnection) -> None:
    """Views ``sample_ccd``, ``sample_truth_ccd`` and ``sample_truth_transits``: the rows of the transits
    whose id hashes to 0 modulo ``S`` (:func:`ccd_sampling`; ``S`` = 1, every row, up to
    :data:`CCD_ROWS_CHECKED` CCD rows), and ``sampling(ccd_every)`` holding ``S``.

    The statistical CCD checks (centroid pulls, cosmic-ray flags) join run and truth CCD rows: at full
    scale 700 M rows each side, a join that would spill tens of GB. A deterministic 1-in-S sample of
    transits (every CCD row of a sampled transit) keeps millions of pulls, far more than the bounds need.
    """
    every = ccd_sampling(con.execute("SELECT count(*) FROM ccd").fetchall()[0][0])
    con.execute(f"CREATE TABLE sampling AS SELECT {every}::BIGINT AS ccd_every")
    keep = "" if every == 1 else f" WHERE hash(transit_id) % {every} = 0"
    for view, table in (("sample_ccd", "ccd"), ("sample_truth_ccd", "truth_ccd"),
                        ("sample_truth_transits", "truth_transits")):
        con.execute(f"CREATE VIEW {view} AS SELECT * FROM {table}{keep}")
    con.execute(f"CREATE VIEW sample_pairs AS {SAMPLE_PAIRS}")
    con.execute(f"CREATE VIEW phot_pairs AS {PHOT_PAIRS.format(per_bin=int(PHOT_TRANSITS_PER_BIN))}")


#: Each sampled CCD image with its truth: the true G and its bin, the strip, the IPD flags, the true
#: cosmic-ray charge, the AL centroid error (px) and the AL and AC centroid pulls (NULL where the window has
#: no AC centre).
SAMPLE_PAIRS = """
    SELECT transit_id, t.fov, t.ccd_row, t.g_mag, floor(t.g_mag) AS g_bin, c.strip::VARCHAR AS strip, c.flags,
           tc.cosmic_e, c.chi2, c.flux_e, tc.bg_e AS bg_true_e, t.window_class,
           c.al_px - tc.al_px AS al_res_px,
           (c.al_px - tc.al_px - tc.cti_px) / c.al_px_err AS al_pull, (c.ac_px - tc.ac_px) / c.ac_px_err AS ac_pull,
           (c.obmt_ns - tc.obmt_ns) / 1e6 AS t_res_ms
    FROM sample_ccd c JOIN sample_truth_ccd tc USING (transit_id, strip) JOIN sample_truth_transits t USING (transit_id)
"""

#: Each transit's photometric errors (run minus truth; NULL where the run has no such magnitude) with its
#: true G and its bin: every transit of a bin of up to :data:`PHOT_TRANSITS_PER_BIN` (``per_bin``) transits, those
#: whose id hashes to 0 modulo n // per_bin of a larger one (deterministic: the same transits every time).
PHOT_PAIRS = """
    WITH sizes AS (SELECT floor(g_mag) AS g_bin, count(*) AS n FROM truth_transits GROUP BY g_bin),
         t AS (SELECT t.transit_id, s.g_bin, t.g_mag, t.bp_mag, t.rp_mag
               FROM truth_transits t JOIN sizes s ON s.g_bin = floor(t.g_mag)
               WHERE hash(t.transit_id) % greatest(1, s.n // {per_bin}) = 0)
    SELECT t.g_bin, t.g_mag AS g_true, t.bp_mag - t.rp_mag AS bp_rp_true, r.g_mag - t.g_mag AS d_g,
           r.bp_mag - t.bp_mag AS d_bp, r.rp_mag - t.rp_mag AS d_rp
    FROM transits r JOIN t USING (transit_id)
"""


def cache_sample_pairs(con: duckdb.DuckDBPyConnection) -> None:
    """Hold ``sample_pairs`` and ``phot_pairs`` in memory (temporary tables, which DuckDB reads before the
    views of those names), so that the checks reading them join the run and the truth once: at full scale
    each CCD join scans 700 M rows a side, each transit join 70 M. Idempotent; nothing to do without truth."""
    if has_truth(con):
        for name in ("sample_pairs", "phot_pairs"):
            con.execute(f"CREATE TEMP TABLE IF NOT EXISTS {name} AS SELECT * FROM main.{name}")


def has_truth(con: duckdb.DuckDBPyConnection) -> bool:
    # fetchall, not fetchone: a result left unfinished makes the connection refuse con.sql(...) until it is
    # fetched to the end (DuckDB 2), and the caller's next query may well be one.
    return bool(con.execute(
        "SELECT count(*) FROM duckdb_views() WHERE view_name = 'truth_transits'").fetchall()[0][0])
