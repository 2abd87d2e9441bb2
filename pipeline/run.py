"""``gaiasim run``: the daily pipeline over one dataset's TM files and reference catalogue.

Stages (each a function taking the last one's result, like nox's workflow): ingest -> decode ->
image parameters -> attitude and sky positions -> crossmatch -> photometry -> outputs. The pipeline
reads ``<dataset>/tm/*.tm`` and ``<dataset>/catalogue/``, nothing else of the dataset.
"""

from __future__ import annotations

import importlib.metadata
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as pads

from pipeline import alerts, attitude, catalog, crossmatch, geometry, icd, io, schemas, transits
from pipeline.config import PipelineConfig
from pipeline.hkmon import check_hk_table
from pipeline.ingest import ingest_files
from pipeline.limits import default_limits_path, load_limit_table

Progress = Callable[[str, float], None]
RUN_JSON = "run.json"
#: Transits fitted at once (bounds the memory of the image-parameter stage).
IPD_CHUNK_TRANSITS = 50_000


def _noop(_stage: str, _fraction: float) -> None:
    return None


def version() -> str:
    try:
        return importlib.metadata.version("gaiasim")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


def tm_files(dataset: Path) -> list[Path]:
    """TM files of a dataset in reception order (their names are the pass start times)."""
    tm = Path(dataset) / "tm"
    if not tm.is_dir():
        raise io.InputError(f"{dataset} has no tm/ folder; give a dataset made by 'gaiasim generate'")
    return sorted(tm.glob("*.tm"))


def read_catalogue(dataset: Path) -> pa.Table:
    """The reference catalogue, checked against :data:`pipeline.schemas.CATALOGUE`."""
    folder = Path(dataset) / "catalogue"
    files = sorted(folder.rglob("*.parquet")) if folder.is_dir() else []
    if not files:
        raise io.InputError(f"{dataset} has no reference catalogue (catalogue/*.parquet); regenerate the dataset")
    table = pads.dataset([str(f) for f in files], format="parquet").to_table()
    missing = [f.name for f in schemas.CATALOGUE if f.name not in table.column_names]
    if missing:
        raise io.InputError(f"catalogue has the wrong schema: column {missing[0]!r} is missing "
                            f"(expected {', '.join(schemas.CATALOGUE.names)})")
    try:
        return table.select(schemas.CATALOGUE.names).cast(schemas.CATALOGUE)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise io.InputError(f"catalogue has the wrong schema: {exc}") from None


def _hk_table(records: np.ndarray | None) -> pa.Table:
    if records is None or len(records) == 0:
        return schemas.HK.empty_table()
    n_ch = len(icd.HK_CHANNELS)
    return pa.table(
        {
            "obmt_ns": np.repeat(records["obmt_ns"].astype(np.int64), n_ch),
            "channel": np.tile(np.array([c.name for c in icd.HK_CHANNELS]), len(records)),
            "value": records["payload"]["value"].astype(np.float64).ravel(),
        },
        schema=schemas.HK,
    )


def run(dataset: Path, out: Path, config: PipelineConfig | None = None, progress: Progress = _noop) -> dict:
    """Run the pipeline over ``dataset`` into the run folder ``out``; returns the content of run.json."""
    config = config or PipelineConfig()
    dataset, out = Path(dataset).resolve(), Path(out).resolve()
    files = tm_files(dataset)
    catalogue = read_catalogue(dataset)
    if out.exists() and any(out.iterdir()):
        raise io.InputError(f"run folder {out} is not empty; choose a new --out folder or remove it")
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(stage: str, fraction: float) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[stage] = round(now - clock, 4)
        clock = now
        progress(stage, fraction)

    ing = ingest_files(files)
    lap("ingest", 0.2)

    att = ing.packets.get(icd.APID_ATTITUDE)
    att_t = att["obmt_ns"].astype(np.int64) if att is not None else np.empty(0, np.int64)
    att_q = att["payload"]["q"].astype(np.float64) if att is not None else np.empty((0, 4))
    # Corrupted attitude solutions are reported and left out of the attitude used for sky positions.
    glitched = attitude.find_glitches(att_t, att_q)
    attitude_events = attitude.glitch_events(att_t, glitched)
    att_t, att_q = att_t[~glitched], att_q[~glitched]
    hk = _hk_table(ing.packets.get(icd.APID_HK))
    hk_limit_events = check_hk_table(hk, load_limit_table(default_limits_path()))
    lap("decode", 0.3)

    cal = config.calibration
    rows, ccd_parts = [], []
    for wc, apid in enumerate(icd.STAR_APIDS):
        packets = ing.packets.get(apid)
        # In chunks: the fits' float64 samples and intermediates take ~20x the packets' own size.
        for lo in range(0, 0 if packets is None else len(packets), IPD_CHUNK_TRANSITS):
            records = packets[lo:lo + IPD_CHUNK_TRANSITS]
            fit = transits.fit_star_packets(records, wc, cal)
            cols = transits.transit_rows(records, wc, fit, cal, att_t, att_q)
            rows.append(cols)
            ccd_parts.append(transits.ccd_table(cols["transit_id"], cols["fov"], fit))
    lap("ipd", 0.7)

    cols = {k: np.concatenate([r[k] for r in rows]) for k in rows[0]} if rows else None
    n_tr = len(cols["transit_id"]) if cols else 0
    index = crossmatch.build_index(
        geometry.unit_from_radec(catalogue["ra_deg"].to_numpy(), catalogue["dec_deg"].to_numpy()),
        config.match_radius_mas,
    )
    if cols:
        order = np.argsort(cols["obmt_ns"], kind="stable")
        cols = {k: v[order] for k, v in cols.items()}
        positioned = np.isfinite(cols["ra_deg"])
        u = geometry.unit_from_radec(np.nan_to_num(cols["ra_deg"]), np.nan_to_num(cols["dec_deg"]))
        row, sep = crossmatch.nearest(index, u)
        row = np.where(positioned, row, -1)
        matched = row >= 0
        src = catalogue["source_id"].to_numpy()
        cols["flags"] = cols["flags"] | np.where(matched, 0, crossmatch.FLAG_UNMATCHED).astype(np.int32)
        transit_table = pa.table(
            {
                **{k: cols[k] for k in ("transit_id", "obmt_ns", "fov", "ccd_row", "ac_px", "window_class", "gate",
                                        "ra_deg", "dec_deg")},
                "source_id": pa.array(np.where(matched, src[np.maximum(row, 0)] if len(src) else 0, 0),
                                      mask=~matched),
                "match_sep_mas": pa.array(sep.astype(np.float32), mask=~matched),
                "g_mag": pa.array(cols["g_mag"], mask=~np.isfinite(cols["g_mag"])),
                **{k: pa.array(cols[k], mask=~np.isfinite(cols[k]))
                   for k in ("g_mag_err", "bp_mag", "bp_mag_err", "rp_mag", "rp_mag_err")},
                "n_af_ok": cols["n_af_ok"],
                "flags": cols["flags"],
            },
            schema=schemas.TRANSITS,
        )
    else:
        transit_table = schemas.TRANSITS.empty_table()
    lap("crossmatch", 0.85)
    alert_table = alerts.raise_alerts(transit_table, catalogue, alerts.load_alert_config(alerts.DEFAULT_CONFIG_PATH))
    lap("alerts", 0.9)

    tables = {
        "transits": transit_table,
        "ccd": pa.concat_tables(ccd_parts) if ccd_parts else schemas.CCD.empty_table(),
        "quarantine": ing.quarantine,
        "gaps": ing.gaps,
        "hk": hk,
        "alerts": alert_table,
        "hk_events": pa.concat_tables([attitude_events, hk_limit_events]),
    }
    for name, schema in schemas.RUN_TABLES.items():
        io.write_table(tables.get(name, schema.empty_table()), schema, out / name / "part-0.parquet")
    catalog.write_catalog(out)
    lap("write", 1.0)

    counts = dict(ing.counts)
    counts.update(
        transits=n_tr,
        transits_matched=int(transit_table["source_id"].is_valid().to_numpy().sum()) if n_tr else 0,
        ccd_images=tables["ccd"].num_rows,
        hk_samples=hk.num_rows,
        hk_limit_events=hk_limit_events.num_rows,
        catalogue_sources=catalogue.num_rows,
        alerts=alert_table.num_rows,
    )
    counts["balance_ok"] = counts["packets_read"] == (
        counts["packets_used"] + counts["duplicates_dropped"] + counts["packets_quarantined"]
    )
    info = {
        "pipeline_version": version(),
        "dataset": str(dataset),
        "config": config.to_json(),
        "inputs": {f"tm/{f.name}": io.sha256_file(f) for f in files},
        "counts": counts,
        "timings_s": timings,
        "status": "complete",
    }
    io.write_json(info, out / RUN_JSON)
    return info
