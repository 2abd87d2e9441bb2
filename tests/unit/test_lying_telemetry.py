"""Telemetry that passes its CRC but lies: packets of the demo day forged field by field (their CRCs kept
valid), then the whole pipeline run over them. Each lie is quarantined with its reason, never a crash and
never a transit; the packet balance holds; nothing in the outputs breaks the ICD."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass

import numpy as np
import pytest

from pipeline import icd
from tests.tm import Packet, RunOutputs, assert_conserved, forge, icd_violations, packets_of, read_packet, run_dataset

DAY_NS = 86_400_000_000_000
TEN_YEARS_NS = 3652 * DAY_NS


def _set(field: str, value):
    def change(r: np.ndarray) -> None:
        r["payload"][field] = value
    return change


def _tid(change_tid):
    def change(r: np.ndarray) -> None:
        r["payload"]["transit_id"] = np.uint64(change_tid(int(r["payload"]["transit_id"][0])))
    return change


def _moved(dt_ns: int):
    """Time and transit_id moved together by ``dt_ns`` (a consistent packet of another time)."""
    def change(r: np.ndarray) -> None:
        r["obmt_ns"] = np.uint64(int(r["obmt_ns"][0]) + dt_ns)
        t = int(r["obmt_ns"][0]) // icd.TRANSIT_ID_OBMT_QUANTUM_NS
        r["payload"]["transit_id"] = np.uint64((t << 17) | (int(r["payload"]["transit_id"][0]) & 0x1FFFF))
    return change


def _attitude(q):
    def change(r: np.ndarray) -> None:
        r["payload"]["q"] = q
    return change


def _hk_nan(r: np.ndarray) -> None:
    r["payload"]["value"][0, 2] = np.nan


@dataclass(frozen=True)
class Lie:
    name: str
    apid: int
    change: object  # callable on the packet record
    reason: str


LIES = [
    Lie("gate 200 (crashed the run)", icd.APID_STAR_WC2, _set("gate", 200), "bad_gate"),
    Lie("gate 3", icd.APID_STAR_WC2, _set("gate", 3), "bad_gate"),
    Lie("FoV bits giving FoV 4", icd.APID_STAR_WC2, _tid(lambda t: t | (3 << 15)), "bad_transit_id"),
    Lie("CCD row 0", icd.APID_STAR_WC2, _tid(lambda t: t & ~(7 << 12)), "bad_transit_id"),
    Lie("AC pixel 4095", icd.APID_STAR_WC1, _tid(lambda t: t | 0xFFF), "bad_transit_id"),
    Lie("window class of another APID", icd.APID_STAR_WC2, _set("window_class", 0), "bad_window_class"),
    Lie("OBMT 0", icd.APID_STAR_WC2, lambda r: r.__setitem__("obmt_ns", 0), "time_mismatch"),
    Lie("OBMT ten years away, transit_id too", icd.APID_STAR_WC2, _moved(TEN_YEARS_NS), "outside_day"),
    Lie("OBMT before the day, transit_id too", icd.APID_STAR_WC1, _moved(-DAY_NS), "outside_day"),
    Lie("HK packet at OBMT 0", icd.APID_HK, lambda r: r.__setitem__("obmt_ns", 0), "outside_day"),
    Lie("attitude of norm 2", icd.APID_ATTITUDE, _attitude([0, 0, 0, 2.0]), "bad_attitude"),
    Lie("attitude NaN", icd.APID_ATTITUDE, _attitude([np.nan, 0, 0, 1]), "bad_attitude"),
    Lie("HK value NaN", icd.APID_HK, _hk_nan, "bad_hk_value"),
]


@pytest.fixture(scope="module")
def lying_run(demo_run, tmp_path_factory) -> tuple[RunOutputs, dict[str, Packet], list[Packet], list[Packet], tuple]:
    """The demo day with every lie of :data:`LIES` forged into one packet each, a transit_id claimed by two
    star packets, and a conflicting copy of a star packet appended to a file; then run."""
    dataset = tmp_path_factory.mktemp("lies") / "dataset"
    shutil.copytree(demo_run[0], dataset)
    span = json.loads((dataset / "dataset.json").read_text())
    tm = sorted((dataset / "tm").glob("*.tm"))[1]
    pools = {apid: packets_of(tm, apid)[::7] for apid in icd.PAYLOADS}  # apart from each other
    forged = {}
    for lie in LIES:
        forged[lie.name] = pools[lie.apid].pop(0)
        forge(forged[lie.name], lie.change)
    # Two star packets (different counts and window classes) claiming one transit_id.
    a, b = pools[icd.APID_STAR_WC2].pop(0), pools[icd.APID_STAR_WC1].pop(0)
    rec_a = read_packet(a)

    def claim(r: np.ndarray) -> None:
        r["obmt_ns"] = rec_a["obmt_ns"]
        r["payload"]["transit_id"] = rec_a["payload"]["transit_id"]
    forge(b, claim)
    # A copy of a star packet (same APID, count and time) with other samples, appended to the last file.
    c = pools[icd.APID_STAR_WC2].pop(0)
    last = sorted((dataset / "tm").glob("*.tm"))[-1]
    copy = Packet(last, last.stat().st_size, c.apid)
    with open(last, "ab") as f:
        f.write(read_packet(c).tobytes())
    forge(copy, lambda r: r["payload"].__setitem__("sm_adu", r["payload"]["sm_adu"] + 1))
    out = run_dataset(dataset, dataset.parent / "run")
    return out, forged, [a, b], [c, copy], (span["obmt_start_ns"], span["obmt_end_ns"])


def _reason_at(out: RunOutputs, p: Packet) -> list[str]:
    return [q["reason"] for q in out.quarantine if q["file"] == p.file.name and q["offset"] == p.offset]


@pytest.mark.parametrize("lie", LIES, ids=[lie.name for lie in LIES])
def test_each_lie_is_quarantined_with_its_reason(lying_run, lie):
    out, forged, *_ = lying_run
    assert _reason_at(out, forged[lie.name]) == [lie.reason]


def test_two_packets_claiming_one_transit_are_both_quarantined(lying_run):
    out, _forged, claimants, _copies, _span = lying_run
    assert [_reason_at(out, p) for p in claimants] == [["transit_conflict"], ["transit_conflict"]]
    tid = int(read_packet(claimants[0])["payload"]["transit_id"][0])
    assert tid not in out.transits["transit_id"].to_pylist()


def test_copies_with_other_content_are_a_conflict_not_a_duplicate(lying_run):
    out, _forged, _claimants, copies, _span = lying_run
    assert [_reason_at(out, p) for p in copies] == [["conflict"], ["conflict"]]
    assert not [g for g in out.gaps if g["kind"] == "duplicate"]


def test_the_balance_holds_and_nothing_else_is_quarantined(lying_run):
    out, forged, claimants, copies, _span = lying_run
    assert_conserved(out.counts)
    assert len(out.quarantine) == len(forged) + len(claimants) + len(copies) == out.counts["packets_quarantined"]


def test_no_output_row_breaks_the_icd(lying_run):
    out, *_, span = lying_run
    assert out.transits.num_rows > 1000
    assert icd_violations(out, span) == []
    forged_tids = {int(read_packet(p)["payload"]["transit_id"][0]) for p in lying_run[1].values()
                   if p.apid in icd.STAR_APIDS}
    assert not forged_tids & set(out.transits["transit_id"].to_pylist()), "a lying packet became a transit"
