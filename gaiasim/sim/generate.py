"""``gaiasim generate``: sky + scanning law + focal plane + noise + HK + downlink -> a dataset folder.

The folder is built under a temporary name beside ``out`` and renamed at the end, so a failed or killed
generation never leaves a half-written dataset behind.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa

from gaiasim import dataset as ds
from gaiasim.sim import catalogue, downlink, faults, housekeeping, signal, sky
from gaiasim.sim.scanlaw import ScanLaw, ScanLawParams
from gaiasim.sim.timescale import obmt_ns_from_date
from gaiasim.spec import DaySpec, SpecError
from pipeline import geometry, icd
from pipeline.calibration import DEFAULT as CALIBRATION

Progress = Callable[[str, float], None]

#: Sampling of the scan to find the sky pixels a day crosses: along scan (ns) and across scan (rad).
COVERAGE_STEP_NS = 2_000_000_000
COVERAGE_AC_SAMPLES = 15
COVERAGE_AC_MARGIN_RAD = np.deg2rad(0.05)

TRUTH_TRANSITS = pa.schema(
    [
        pa.field("transit_id", pa.int64(), nullable=False),
        pa.field("source_id", pa.int64(), nullable=False),
        pa.field("obmt_ns", pa.int64(), nullable=False, metadata={"unit": "ns", "doc": "AF1 crossing"}),
        pa.field("fov", pa.int8(), nullable=False),
        pa.field("ccd_row", pa.int8(), nullable=False),
        pa.field("ac_px", pa.int16(), nullable=False, metadata={"unit": "px"}),
        pa.field("zeta_rad", pa.float64(), nullable=False, metadata={"unit": "rad"}),
        pa.field("g_mag", pa.float32(), nullable=False, metadata={"unit": "mag"}),
        pa.field("window_class", pa.int8(), nullable=False),
        pa.field("gate", pa.int8(), nullable=False),
        pa.field("apid", pa.int32(), nullable=False),
        pa.field("seq", pa.int32(), nullable=False),
        pa.field("file", pa.string(), nullable=False),
    ]
)


def _noop(_stage: str, _fraction: float) -> None:
    return None


def crossed_pixels(scan: ScanLaw, t0_ns: int, t1_ns: int) -> np.ndarray:
    """Sky pixels that the two fields of view cross in [t0, t1)."""
    t = np.arange(t0_ns, t1_ns + COVERAGE_STEP_NS, COVERAGE_STEP_NS, dtype=np.int64)
    q = scan.attitude(t)
    zeta = np.linspace(geometry.ZETA_MIN_RAD - COVERAGE_AC_MARGIN_RAD, -geometry.ZETA_MIN_RAD + COVERAGE_AC_MARGIN_RAD,
                       COVERAGE_AC_SAMPLES)
    pixels = []
    for fov in (1, 2):
        srs = geometry.srs_direction(geometry.fov_phi_rad(fov), zeta)  # (ac, 3)
        u = geometry.quat_rotate(q[:, None, :], srs[None, :, :])
        pixels.append(sky.pixels_near(u.reshape(-1, 3)))
    return np.unique(np.concatenate(pixels))


def _transits(spec: DaySpec, scan: ScanLaw, sources: pa.Table, t0_ns: int, t1_ns: int) -> dict[str, np.ndarray]:
    u = geometry.unit_from_radec(sources["ra_deg"].to_numpy(), sources["dec_deg"].to_numpy())
    found = scan.find_transits(u, t0_ns, t1_ns)
    src = found["source_index"]
    row = geometry.ccd_row_of_zeta(found["zeta_rad"])
    ac_px = geometry.ac_px_of_zeta(found["zeta_rad"], row)
    tid = geometry.encode_transit_id(found["obmt_ns"], found["fov"], row, ac_px)
    g_mag = sources["g_mag"].to_numpy()[src]
    # Two images within one AC pixel and one 0.2 ms OBMT quantum would share a window on board: only the
    # brighter one gets it (the other never becomes a transit).
    order = np.lexsort((g_mag, tid))
    keep = order[np.r_[True, tid[order][1:] != tid[order][:-1]]]
    keep.sort()
    return {
        "transit_id": tid[keep],
        "source_index": src[keep],
        "obmt_ns": found["obmt_ns"][keep],
        "fov": found["fov"][keep].astype(np.int8),
        "ccd_row": row[keep].astype(np.int8),
        "ac_px": ac_px[keep].astype(np.int16),
        "zeta_rad": found["zeta_rad"][keep],
        "g_mag": g_mag[keep],
    }


def generate(spec: DaySpec, out: Path, faults_path: Path | None = None, progress: Progress = _noop) -> dict:
    """Generate the dataset of ``spec`` into ``out`` (which must not exist); returns its manifest."""
    out = Path(out)
    if out.exists():
        raise SpecError(f"output {out} already exists; choose a new --out folder or remove it")
    plan = faults.load_plan(faults_path) if faults_path else faults.FaultPlan()
    parent = out.parent if str(out.parent) else Path(".")
    parent.mkdir(parents=True, exist_ok=True)
    tmp = parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        manifest = _generate_into(spec, plan, tmp, progress)
        manifest["faults_plan"] = str(faults_path) if faults_path else ""
        ds.write_manifest(tmp, manifest)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def _generate_into(spec: DaySpec, plan: faults.FaultPlan, root: Path, progress: Progress) -> dict:
    rng = np.random.default_rng([spec.seed, 2])
    t0 = obmt_ns_from_date(spec.date)
    t1 = t0 + spec.days * 86_400_000_000_000
    progress("scanning law", 0.0)
    scan = ScanLaw(t0, t1 + COVERAGE_STEP_NS, ScanLawParams())
    progress("sky", 0.1)
    sources = sky.materialise(spec.seed, crossed_pixels(scan, t0, t1), spec.scale)
    progress("transits", 0.2)
    tr = _transits(spec, scan, sources, t0, t1)
    source_id = sources["source_id"].to_numpy()[tr["source_index"]]
    bp_rp = sources["bp_rp"].to_numpy()[tr["source_index"]]
    t_ref = geometry.decode_transit_id(tr["transit_id"])[0]
    t_offset_px = (tr["obmt_ns"] - t_ref) / geometry.TDI_PERIOD_NS

    progress("windows", 0.35)
    windows = signal.make_windows(rng, tr["transit_id"], t_offset_px, tr["fov"], tr["g_mag"].astype(np.float64),
                                  bp_rp.astype(np.float64), CALIBRATION)
    progress("housekeeping", 0.6)
    hk_t, hk_values = housekeeping.hk_samples(rng, t0, t1, tr["obmt_ns"], tr["fov"])
    hk_payload = np.zeros(len(hk_t), dtype=icd.HK_PAYLOAD)
    hk_payload["value"] = hk_values
    att_t, att_payload = housekeeping.attitude_samples(t0, t1, scan.attitude)

    # Packets per APID in generation order, with the on-board sequence counter (random start, so the
    # 14-bit wrap is exercised).
    streams: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # apid -> (obmt_ns, payload)
    streams[icd.APID_HK] = (hk_t, hk_payload)
    streams[icd.APID_ATTITUDE] = (att_t, att_payload)
    n_tr = len(tr["transit_id"])
    apid_of_transit = np.zeros(n_tr, dtype=np.int32)
    seq_of_transit = np.zeros(n_tr, dtype=np.int32)
    for w in windows:
        order = np.argsort(tr["obmt_ns"][w.index], kind="stable")
        streams[w.apid] = (tr["obmt_ns"][w.index][order], w.payload[order])
        apid_of_transit[w.index[order]] = w.apid
    passes = downlink.pass_schedule(spec.date, spec.days, t0)
    encoded: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for apid in sorted(streams):
        t, payload = streams[apid]
        seq = (int(rng.integers(0, icd.SEQ_COUNT_MODULO)) + np.arange(len(t))) % icd.SEQ_COUNT_MODULO
        encoded[apid] = (t, seq, icd.encode_packets(apid, seq, t, payload))
    for w in windows:
        order = np.argsort(tr["obmt_ns"][w.index], kind="stable")
        seq_of_transit[w.index[order]] = encoded[w.apid][1]

    progress("downlink", 0.7)
    ledger = faults.Ledger()
    tm_dir = root / "tm"
    tm_dir.mkdir(parents=True)
    pass_of = {apid: downlink.assign_passes(e[0], passes) for apid, e in encoded.items()}
    for i, p in enumerate(passes):
        chunks = []
        for apid, (t, seq, rows) in sorted(encoded.items(), key=lambda kv: downlink.PRIORITY[kv[0]]):
            sel = pass_of[apid] == i
            ends = np.zeros(len(t), dtype=bool)
            if len(t):
                ends[[0, -2, -1]] = True
            chunks.append((apid, seq[sel], t[sel], rows[sel], ends[sel]))
        truncate = i >= len(passes) - plan.truncated_files
        ds.write_tm(tm_dir / f"{p.name}.tm", faults.apply(plan, rng, f"{p.name}.tm", chunks, ledger, truncate))
    file_names = np.array([f"{p.name}.tm" for p in passes])
    file_of_transit = file_names[downlink.assign_passes(tr["obmt_ns"], passes)]

    progress("truth and catalogue", 0.85)
    truth_transits = pa.table(
        {
            "transit_id": tr["transit_id"],
            "source_id": source_id,
            "obmt_ns": tr["obmt_ns"],
            "fov": tr["fov"],
            "ccd_row": tr["ccd_row"],
            "ac_px": tr["ac_px"],
            "zeta_rad": tr["zeta_rad"],
            "g_mag": tr["g_mag"].astype(np.float32),
            "window_class": signal.window_class_of(tr["g_mag"]),
            "gate": signal.gate_of(tr["g_mag"]),
            "apid": apid_of_transit,
            "seq": seq_of_transit,
            "file": file_of_transit.astype(str),
        },
        schema=TRUTH_TRANSITS,
    )
    truth_ccd = pa.concat_tables([w.truth_ccd for w in windows]) if windows else signal.TRUTH_CCD.empty_table()
    ds.write_truth(root, "sources", sources, sky.TRUTH_SOURCES)
    ds.write_truth(root, "transits", truth_transits, TRUTH_TRANSITS)
    ds.write_truth(root, "ccd", truth_ccd, signal.TRUTH_CCD)
    ds.write_truth(root, "faults", ledger.table(), faults.TRUTH_FAULTS)
    catalogue.write(root / "catalogue", sources, np.random.default_rng([spec.seed, 3]))
    progress("manifest", 0.95)
    return {
        "spec": spec.to_json(),
        "obmt_start_ns": t0,
        "obmt_end_ns": t1,
        "counts": {
            "sources": sources.num_rows,
            "transits": n_tr,
            "tm_files": len(passes),
            "packets": int(sum(len(e[0]) for e in encoded.values())),
            "faults": ledger.count(),
        },
    }
