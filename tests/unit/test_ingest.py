"""Ingest (pipeline.ingest): sequence checks (duplicates, conflicts, gaps, stalls, count jumps, late
packets) and chunked scanning; and the run's ingest end to end on hand-made TM files (tests.tm):
conservation and every kind of damage reported."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gaiasim.sim import faults
from pipeline import icd, schemas
from pipeline.ingest import LOOKAHEAD_OCTETS, late_flags, scan_file, sequence_anomalies
from tests.strategies import fault_plans
from tests.tm import MOD, T0_NS, assert_conserved, hand_packet, hk_packets, periodic_packets, run_tm

HK_DT_NS = icd.PERIOD_NS[icd.APID_HK]  # HK packet spacing
ATT_DT_NS = icd.PERIOD_NS[icd.APID_ATTITUDE]


def distinct(idx: np.ndarray) -> np.ndarray:
    """``octets`` for sequence_anomalies when every packet differs from every other (none are copies)."""
    return np.asarray(idx, dtype=np.int64).reshape(-1, 1)


def same(idx: np.ndarray) -> np.ndarray:
    """``octets`` for sequence_anomalies when copies are identical."""
    return np.zeros((len(idx), 1), np.uint8)


def rows_of(gaps: dict[str, list], kind: str) -> list[dict]:
    names = list(gaps)
    return [dict(zip(names, values, strict=True)) for values in zip(*gaps.values(), strict=True)
            if values[names.index("kind")] == kind]


def covered(first: int, last: int) -> set[int]:
    """Counts from ``first`` to ``last`` inclusive, modulo 16384."""
    return {(first + k) % MOD for k in range((last - first) % MOD + 1)}


# --- sequence_anomalies ------------------------------------------------------------------------------


@st.composite
def wrapped_sequences_with_drops(draw):
    """A consecutive sequence from any start (wrapping at 16384) with an interior subset dropped."""
    start = draw(st.integers(0, MOD - 1))
    n = draw(st.integers(2, 400))
    dropped = draw(st.sets(st.integers(1, n - 2), max_size=n - 2)) if n > 2 else set()
    keep = np.array([i for i in range(n) if i not in dropped], dtype=np.int64)
    return start, n, keep, sorted(dropped)


@given(wrapped_sequences_with_drops())
def test_gaps_account_exactly_for_the_dropped_counts_across_the_wrap(case):
    start, _n, keep, dropped = case
    seq = (start + keep) % MOD
    obmt = T0_NS + keep * HK_DT_NS
    found = sequence_anomalies(icd.APID_HK, seq, obmt, np.full(len(keep), "a.tm", dtype=object), same)
    kept, gaps = found.keep, found.gaps
    assert kept.tolist() == list(range(len(keep)))
    gap_rows = rows_of(gaps, "gap")
    assert sum(r["count"] for r in gap_rows) == len(dropped)
    reported: list[int] = []
    for r in gap_rows:
        span = covered(r["first_seq"], r["last_seq"])
        assert len(span) == r["count"], f"gap {r}: range holds {len(span)} counts"
        reported.extend(span)
    assert sorted(reported) == sorted((start + d) % MOD for d in dropped)
    assert len(reported) == len(set(reported)), "a dropped count is reported twice"
    assert not rows_of(gaps, "duplicate") and not rows_of(gaps, "out_of_order")


def test_gap_across_the_wrap_is_one_row():
    seq = np.array([16381, 16382, 1, 2])  # 16383 and 0 missing
    obmt = T0_NS + np.array([0, 1, 4, 5]) * HK_DT_NS
    gaps = sequence_anomalies(icd.APID_HK, seq, obmt, np.array(["a.tm"] * 4, dtype=object), same).gaps
    (row,) = rows_of(gaps, "gap")
    assert (row["first_seq"], row["last_seq"], row["count"]) == (16383, 0, 2)
    assert row["obmt_ns"] == T0_NS + 4 * HK_DT_NS, "the gap is seen at the packet after it"
    assert list(gaps) == schemas.GAPS.names


def test_duplicates_are_dropped_counted_and_the_first_received_kept():
    seq = np.array([10, 11, 11, 12, 12, 12, 13])
    obmt = T0_NS + (seq - 10) * ATT_DT_NS
    files = np.array(["a.tm", "a.tm", "b.tm", "a.tm", "b.tm", "c.tm", "c.tm"], dtype=object)
    found = sequence_anomalies(icd.APID_ATTITUDE, seq, obmt, files, same)
    kept, gaps = found.keep, found.gaps
    assert kept.tolist() == [0, 1, 3, 6] and not len(found.conflict)
    dup = rows_of(gaps, "duplicate")
    assert sorted((r["first_seq"], r["count"], r["file"]) for r in dup) == [
        (11, 1, "b.tm"), (12, 1, "b.tm"), (12, 1, "c.tm")]
    assert all(r["apid"] == icd.APID_ATTITUDE for r in dup)
    assert not rows_of(gaps, "gap") and not rows_of(gaps, "out_of_order")


def test_same_count_at_another_time_is_not_a_duplicate():
    # After a full wrap the count comes back: 16384 packets later it is a new packet.
    seq = np.array([5, 6, 5])
    obmt = T0_NS + np.array([0, 1, MOD]) * HK_DT_NS
    found = sequence_anomalies(icd.APID_HK, seq, obmt, np.array(["a.tm"] * 3, dtype=object), same)
    kept, gaps = found.keep, found.gaps
    assert kept.tolist() == [0, 1, 2]
    assert not rows_of(gaps, "duplicate")
    (gap,) = rows_of(gaps, "gap")
    assert gap["count"] == MOD - 2


def test_out_of_order_spans_are_reported_and_time_order_restored():
    # Reception order: 0 1 4 5 2 3 6 (2 and 3 arrive late), then 9 8 7 (8 and 7 late, not consecutive:
    # one row each, so every row's sequence range is exact).
    order = np.array([0, 1, 4, 5, 2, 3, 6, 9, 8, 7])
    seq = (16380 + order) % MOD
    obmt = T0_NS + order * HK_DT_NS
    files = np.array(["a.tm"] * 5 + ["b.tm"] * 5, dtype=object)
    found = sequence_anomalies(icd.APID_HK, seq, obmt, files, distinct)
    kept, gaps = found.keep, found.gaps
    assert seq[kept].tolist() == ((16380 + np.arange(10)) % MOD).tolist()
    late = rows_of(gaps, "out_of_order")
    # A row never spans two files (the row names one file): 2 (in a.tm) and 3 (in b.tm) are two rows.
    assert [(r["first_seq"], r["last_seq"], r["count"], r["file"]) for r in late] == [
        ((16380 + 2) % MOD, (16380 + 2) % MOD, 1, "a.tm"),
        ((16380 + 3) % MOD, (16380 + 3) % MOD, 1, "b.tm"),
        ((16380 + 8) % MOD, (16380 + 8) % MOD, 1, "b.tm"),
        ((16380 + 7) % MOD, (16380 + 7) % MOD, 1, "b.tm"),
    ]
    assert not rows_of(gaps, "gap") and not rows_of(gaps, "duplicate")


def test_no_packets_no_rows():
    found = sequence_anomalies(icd.APID_HK, np.empty(0, np.int64), np.empty(0, np.int64),
                               np.empty(0, dtype=object), same)
    assert len(found.keep) == 0 and len(found.conflict) == 0
    assert all(len(v) == 0 for v in found.gaps.values())


def test_a_stalled_counter_is_a_stall_not_a_duplicate_nor_a_lost_wrap():
    # HK: count 6 again one period later (the counter stalled), then on as before.
    seq = np.array([5, 6, 6, 7])
    obmt = T0_NS + np.arange(4) * HK_DT_NS
    found = sequence_anomalies(icd.APID_HK, seq, obmt, np.array(["a.tm"] * 4, dtype=object), distinct)
    assert found.keep.tolist() == [0, 1, 2, 3] and not len(found.conflict)
    assert [(r["kind"], r["first_seq"], r["count"], r["obmt_ns"]) for r in rows_of(found.gaps, "stall")] == [
        ("stall", 6, 1, T0_NS + 2 * HK_DT_NS)]
    assert not rows_of(found.gaps, "gap") and not rows_of(found.gaps, "duplicate")


def test_a_stalled_star_counter_is_told_from_a_wrap_by_the_typical_interval():
    apid = icd.APID_STAR_WC2
    seq = np.array([1, 2, 3, 4, 4, 4])  # 4 repeated soon after, then again much later
    dt = 1_000_000  # 1 ms between star packets
    obmt = T0_NS + np.array([0, 1, 2, 3, 4, 4 + 20_000]) * dt
    found = sequence_anomalies(apid, seq, obmt, np.array(["a.tm"] * 6, dtype=object), distinct)
    assert found.typical_ns == dt
    kinds = [(g["kind"], g["count"]) for g in (dict(zip(found.gaps, v, strict=True))
                                               for v in zip(*found.gaps.values(), strict=True))]
    assert kinds == [("stall", 1), ("gap", MOD - 1)], "20,000 intervals later the count went round: 16383 lost"


def test_a_loss_of_exactly_16384_periodic_packets_is_seen_from_the_times():
    seq = np.array([5, 6, 7])  # counts look consecutive ...
    obmt = T0_NS + np.array([0, 1, 2 + MOD]) * ATT_DT_NS  # ... but 16384 attitude seconds are missing
    found = sequence_anomalies(icd.APID_ATTITUDE, seq, obmt, np.array(["a.tm"] * 3, dtype=object), distinct)
    (gap,) = rows_of(found.gaps, "gap")
    assert (gap["first_seq"], gap["last_seq"], gap["count"]) == (7, 6, MOD)
    # A jump of exactly 16384 counts (16383 lost): the same count, 16384 periods later.
    obmt = T0_NS + np.array([0, 1, 1 + MOD]) * ATT_DT_NS
    found = sequence_anomalies(icd.APID_ATTITUDE, np.array([5, 6, 6]), obmt, np.array(["a.tm"] * 3, dtype=object),
                               distinct)
    (gap,) = rows_of(found.gaps, "gap")
    assert gap["count"] == MOD - 1 and not rows_of(found.gaps, "stall")


def test_counts_that_disagree_with_the_times_are_a_count_jump_with_the_times_count():
    seq = np.array([5, 6, 40, 41])  # counts say 33 lost, times say 2
    obmt = T0_NS + np.array([0, 1, 4, 5]) * HK_DT_NS
    found = sequence_anomalies(icd.APID_HK, seq, obmt, np.array(["a.tm"] * 4, dtype=object), distinct)
    (jump,) = rows_of(found.gaps, "count_jump")
    assert (jump["first_seq"], jump["last_seq"], jump["count"]) == (7, 39, 2)
    assert not rows_of(found.gaps, "gap")


def test_copies_that_differ_are_a_conflict_and_none_is_used():
    # Counts 10..13; 11 comes three times: two identical copies and one that differs.
    seq = np.array([10, 11, 11, 12, 11, 13])
    obmt = T0_NS + (seq - 10) * HK_DT_NS
    content = np.array([[0], [1], [1], [2], [9], [3]], dtype=np.uint8)
    found = sequence_anomalies(icd.APID_HK, seq, obmt, np.array(["a.tm"] * 6, dtype=object), content.__getitem__)
    assert found.conflict.tolist() == [1, 2, 4]
    assert found.keep.tolist() == [0, 3, 5]
    assert not rows_of(found.gaps, "duplicate"), "a conflict is not a duplicate"
    assert [(g["first_seq"], g["count"]) for g in rows_of(found.gaps, "gap")] == [(11, 1)]
    # Identical copies stay duplicates.
    content[4] = 1
    found = sequence_anomalies(icd.APID_HK, seq, obmt, np.array(["a.tm"] * 6, dtype=object), content.__getitem__)
    assert not len(found.conflict) and len(rows_of(found.gaps, "duplicate")) == 2


# --- the run's ingest over hand-made files -------------------------------------------------------------


def write(path: Path, pieces: list[np.ndarray]) -> Path:
    path.write_bytes(np.concatenate([p.reshape(-1) for p in pieces]).tobytes())
    return path


def test_clean_files_use_every_packet(tmp_path):
    out = run_tm(tmp_path, {"a.tm": [hk_packets(16380, 6)], "b.tm": [hk_packets(16386, 4, T0_NS + 6 * HK_DT_NS)]})
    c = out.counts
    assert (c["packets_read"], c["packets_used"], c["duplicates_dropped"], c["packets_quarantined"]) == (10, 10, 0, 0)
    assert out.quarantine == [] and out.gaps == [] and out.warnings == []


def test_every_kind_of_damage_is_reported_and_packets_are_conserved(tmp_path):
    rows = hk_packets(16379, 10)  # counts 16379..16383, 0..4: the wrap is inside the file
    octets = rows.shape[1]
    flipped = rows[3].copy()
    flipped[20] ^= 0x10
    unknown = hand_packet(555, 7, b"\x01" * 16)
    wrong_length = hand_packet(icd.APID_HK, 9, b"\x02" * 8)
    garbage = np.full(11, 0xFF, np.uint8)
    # Garbage is followed by a good packet: the scanner resynchronises on the next valid packet only.
    pieces = [rows[0], rows[1], rows[2], flipped, rows[4], rows[5], rows[5], rows[6], unknown, rows[7],
              wrong_length, garbage, rows[8], rows[9][: octets - 5]]
    out = run_tm(tmp_path, {"pass.tm": pieces})
    offsets = np.cumsum([0] + [p.size for p in pieces])

    assert_conserved(out.counts)
    c = out.counts
    assert (c["packets_read"], c["packets_used"], c["duplicates_dropped"], c["packets_quarantined"]) == (14, 8, 1, 5)
    got = [(r["offset"], r["octets"], r["reason"]) for r in out.quarantine]
    assert got == [
        (offsets[3], octets, "crc_error"),
        (offsets[8], unknown.size, "unknown_apid"),
        (offsets[10], wrong_length.size, "bad_length"),
        (offsets[11], garbage.size, "bad_header"),
        (offsets[13], octets - 5, "truncated"),
    ]
    raw = (tmp_path / "dataset" / "tm" / "pass.tm").read_bytes()
    for r in out.quarantine:
        assert r["file"] == "pass.tm"
        assert r["raw"] == raw[r["offset"] : r["offset"] + r["octets"]], "raw octets differ from the file"
    assert (out.quarantine[1]["apid"], out.quarantine[1]["seq"]) == (555, 7)
    assert [(g["kind"], g["first_seq"], g["last_seq"], g["count"]) for g in out.gaps] == [
        ("duplicate", (16379 + 5) % MOD, (16379 + 5) % MOD, 1),
        ("gap", 16382, 16382, 1),
    ]


def test_truncated_file_followed_by_a_complete_one(tmp_path):
    rows = hk_packets(100, 6)
    out = run_tm(tmp_path, {"a.tm": [rows[0], rows[1], rows[2][:3]], "b.tm": [rows[3], rows[4], rows[5]]})
    assert_conserved(out.counts)
    assert [(r["file"], r["offset"], r["octets"], r["reason"]) for r in out.quarantine] == [
        ("a.tm", 2 * rows.shape[1], 3, "truncated")]
    (gap,) = out.gaps
    assert (gap["kind"], gap["first_seq"], gap["count"], gap["file"]) == ("gap", 102, 1, "b.tm")


def test_empty_file_reads_nothing(tmp_path):
    out = run_tm(tmp_path, {"empty.tm": []})
    assert out.counts["packets_read"] == 0 and out.counts["packets_used"] == 0
    assert out.quarantine == [] and out.gaps == []


def test_a_stalled_counter_in_a_file_is_reported_and_every_packet_used(tmp_path):
    rows = hk_packets(20, 6)
    stalled = hk_packets(22, 1, T0_NS + 3 * HK_DT_NS)  # count 22 again, one period after the first 22
    later = hk_packets(23, 3, T0_NS + 4 * HK_DT_NS)
    out = run_tm(tmp_path, {"a.tm": [rows[:3], stalled, later]})
    assert_conserved(out.counts)
    assert out.counts["packets_used"] == 7 and out.quarantine == []
    assert [(g["kind"], g["first_seq"], g["count"]) for g in out.gaps] == [("stall", 22, 1)]


def test_a_conflicting_copy_quarantines_both_copies(tmp_path):
    rows = hk_packets(0, 4)
    other = rows[2].copy().view(icd.packet_dtype(icd.APID_HK))
    other["payload"]["value"][0, 0] = 99.0  # same APID, count and time, other content, valid CRC
    octets = other.view(np.uint8).copy()
    crc = icd.crc16(octets[:-2])
    octets[-2:] = (crc >> 8, crc & 0xFF)
    out = run_tm(tmp_path, {"a.tm": [rows], "b.tm": [octets]})
    assert_conserved(out.counts)
    n = rows.shape[1]
    assert [(q["file"], q["offset"], q["seq"], q["reason"]) for q in out.quarantine] == [
        ("a.tm", 2 * n, 2, "conflict"), ("b.tm", 0, 2, "conflict")]
    assert out.quarantine[0]["raw"] == rows[2].tobytes() and out.quarantine[1]["raw"] == octets.tobytes()
    assert [(g["kind"], g["first_seq"], g["count"]) for g in out.gaps] == [("gap", 2, 1)]
    assert out.counts["duplicates_dropped"] == 0


def test_a_file_of_another_day_is_quarantined_as_outside_day_and_named(tmp_path):
    day = 86_400_000_000_000
    out = run_tm(tmp_path, {"a.tm": [hk_packets(0, 3)], "b.tm": [hk_packets(3, 3, T0_NS + 2 * day)],
                            "c.tm": [hk_packets(6, 2, T0_NS + 3 * HK_DT_NS), hk_packets(8, 1, T0_NS - day)]})
    assert_conserved(out.counts)
    assert out.counts["packets_outside_day"] == 4 and out.counts["packets_used"] == 5
    assert [(q["file"], q["reason"]) for q in out.quarantine] == [("b.tm", "outside_day")] * 3 + [
        ("c.tm", "outside_day")]
    assert len(out.warnings) == 2
    assert out.warnings[0].startswith("tm/b.tm: all 3 of its 3 packets lie outside")
    assert "another day" in out.warnings[0]
    assert out.warnings[1].startswith("tm/c.tm: 1 of its 3 packets") and "another day" not in out.warnings[1]


def test_a_packet_within_the_day_margin_is_used(tmp_path):
    from pipeline.ingest import DAY_MARGIN_NS

    out = run_tm(tmp_path, {"a.tm": [hk_packets(0, 1, T0_NS - DAY_MARGIN_NS), hk_packets(1, 1, T0_NS - DAY_MARGIN_NS
                                                                                      + icd.PERIOD_NS[icd.APID_HK])]})
    assert out.counts["packets_used"] == 2 and out.quarantine == []


# --- any fault plan ------------------------------------------------------------------------------------


def detected(fault: dict, quarantine: list[dict], gaps: list[dict]) -> bool:
    """Does ``fault`` (a truth_faults row) show up where a correct pipeline must report it?

    The same rules as the ``faults_detected`` check (gaiasim.validate.checks), on ingest's own output.
    """
    kind = fault["kind"]
    if kind in ("bit_flip", "truncated_file"):
        return any(q["file"] == fault["file"] and q["offset"] <= fault["offset"] < q["offset"] + q["octets"]
                   and (kind == "bit_flip" or q["reason"] == "truncated") for q in quarantine)
    if kind == "duplicate":
        return any(g["kind"] == "duplicate" and g["apid"] == fault["apid"] and g["first_seq"] == fault["seq"]
                   and g["obmt_ns"] == fault["obmt_ns"] for g in gaps)
    return any(g["kind"] == "gap" and g["apid"] == fault["apid"]
               and fault["seq"] in covered(g["first_seq"], g["last_seq"]) for g in gaps)


def inject(plan: faults.FaultPlan, rng, n_files: int, per_file: int) -> tuple[dict[str, list], list[dict]]:
    """HK and attitude packets over ``n_files`` passes through ``faults.apply``: (TM files, ledger rows)."""
    apids = (icd.APID_HK, icd.APID_ATTITUDE)
    start = {a: int(rng.integers(0, MOD)) for a in apids}
    n_total = n_files * per_file
    ledger = faults.Ledger()
    files = {}
    for f in range(n_files):
        chunks = []
        for apid in apids:
            k = np.arange(f * per_file, (f + 1) * per_file)
            seq = (start[apid] + k) % MOD
            rows = periodic_packets(apid, start[apid] + f * per_file, per_file,
                                    T0_NS + f * per_file * icd.PERIOD_NS[apid] + apid)  # one time grid per APID
            t = T0_NS + k * icd.PERIOD_NS[apid] + apid
            # As gaiasim.sim.generate: the first and last packet of each APID are never lost.
            chunks.append((apid, seq, t, rows, (k == 0) | (k == n_total - 1)))
        name = f"{f:02d}.tm"
        files[name] = [faults.apply(plan, rng, name, chunks, ledger, truncate=f >= n_files - plan.truncated_files)]
    return files, ledger.table().to_pylist()


@given(fault_plans(), st.integers(0, 2**32 - 1), st.integers(1, 3), st.integers(2, 30))
def test_packets_are_conserved_under_any_fault_plan(tmp_path_factory, plan, seed, n_files, per_file):
    """Every packet read is used, dropped as a counted duplicate or quarantined; flips are always caught."""
    files, truth = inject(plan, np.random.default_rng(seed), n_files, per_file)
    out = run_tm(tmp_path_factory.mktemp("faults"), files)
    assert_conserved(out.counts)
    assert out.counts["packets_quarantined"] == len(out.quarantine)
    assert out.counts["duplicates_dropped"] == sum(g["kind"] == "duplicate" for g in out.gaps)
    assert out.counts["duplicates_dropped"] <= sum(f["kind"] == "duplicate" for f in truth)
    missed = [f for f in truth if f["kind"] == "bit_flip" and not detected(f, out.quarantine, out.gaps)]
    assert not missed, f"{len(missed)} bit flips not quarantined, first {missed[0]}"
    assert not [g for g in out.gaps if g["kind"] in ("out_of_order", "stall", "count_jump")], \
        "faults never reorder packets, stall or jump counters"


@st.composite
def untruncated_plans(draw):
    """Fault plans without truncation, with either losses or flips (with duplicates in both)."""
    plan = draw(fault_plans())
    if draw(st.booleans()):
        return faults.FaultPlan(packet_loss=plan.packet_loss, duplicate=plan.duplicate)
    return faults.FaultPlan(bit_flip=plan.bit_flip, duplicate=plan.duplicate)


@given(untruncated_plans(), st.integers(0, 2**32 - 1), st.integers(1, 3), st.integers(2, 30))
def test_every_injected_fault_is_reported(tmp_path_factory, plan, seed, n_files, per_file):
    files, truth = inject(plan, np.random.default_rng(seed), n_files, per_file)
    out = run_tm(tmp_path_factory.mktemp("faults"), files)
    assert_conserved(out.counts)
    missed = [f for f in truth if not detected(f, out.quarantine, out.gaps)]
    assert not missed, f"{len(missed)} injected faults not reported, first {missed[0]}"
    assert out.counts["duplicates_dropped"] == sum(f["kind"] == "duplicate" for f in truth)


class ScriptedRng:
    """Stands in for ``numpy.random.Generator`` in ``faults.apply``: returns the draws it is given."""

    def __init__(self, uniforms: list[list[float]], bit: int) -> None:
        self._uniforms = [np.array(u) for u in uniforms]
        self._bit = bit

    def random(self, n: int) -> np.ndarray:
        draw = self._uniforms.pop(0)
        assert len(draw) == n
        return draw

    def integers(self, _low: int, _high: int) -> int:
        return self._bit


def test_ledger_only_lists_faults_a_receiver_can_see_loss_then_flipped_last_packet(tmp_path):
    """Packet 1 lost; packet 2, the last of its APID, is drawn for a flip but protected: it arrives
    intact, so the loss shows as a gap, and the ledger lists only what a receiver can see."""
    rows = hk_packets(0, 3)
    seq, t = np.arange(3), T0_NS + np.arange(3) * HK_DT_NS
    rng = ScriptedRng([[0.9, 0.1, 0.9], [0.9, 0.9, 0.1], [0.9, 0.9, 0.9]], bit=100)
    ledger = faults.Ledger()
    data = faults.apply(faults.FaultPlan(packet_loss=0.5, bit_flip=0.5), rng, "a.tm",
                        [(icd.APID_HK, seq, t, rows, np.array([True, False, True]))], ledger)
    out = run_tm(tmp_path, {"a.tm": [data]})
    truth = ledger.table().to_pylist()
    assert [f["kind"] for f in truth] == ["packet_loss"]
    missed = [f for f in truth if not detected(f, out.quarantine, out.gaps)]
    assert not missed, f"the ledger expects faults no pipeline can report: {missed}"


def test_ledger_only_lists_faults_a_receiver_can_see_duplicate_of_truncated_last_packet(tmp_path):
    """The last packet of a truncated file is drawn for duplication but protected: truncation would cut
    the copy and no duplicate could be seen, so none is injected and the ledger holds the truncation only."""
    rows = hk_packets(0, 3)
    seq, t = np.arange(3), T0_NS + np.arange(3) * HK_DT_NS
    rng = ScriptedRng([[0.9, 0.9, 0.9], [0.9, 0.9, 0.9], [0.9, 0.9, 0.1]], bit=0)
    ledger = faults.Ledger()
    plan = faults.FaultPlan(duplicate=0.5, truncated_files=1, truncate_octets=10)
    data = faults.apply(plan, rng, "a.tm", [(icd.APID_HK, seq, t, rows, np.array([True, False, True]))],
                        ledger, truncate=True)
    out = run_tm(tmp_path, {"a.tm": [data]})
    truth = ledger.table().to_pylist()
    assert sorted(f["kind"] for f in truth) == ["truncated_file"]
    missed = [f for f in truth if not detected(f, out.quarantine, out.gaps)]
    assert not missed, f"the ledger expects faults no pipeline can report: {missed}"


@pytest.mark.parametrize("truncate_octets", [1, 5, 47])
def test_corrupt_packet_right_before_a_truncated_tail_keeps_both_reasons(tmp_path, truncate_octets):
    """A flipped packet followed by the truncated end of the file: two rows, crc_error then truncated."""
    rows = hk_packets(0, 4)
    octets = rows.shape[1]
    flipped = rows[2].copy()
    flipped[30] ^= 0x01
    out = run_tm(tmp_path, {"a.tm": [rows[0], rows[1], flipped, rows[3][: octets - truncate_octets]]})
    assert_conserved(out.counts)
    got = [(r["offset"], r["octets"], r["reason"]) for r in out.quarantine]
    assert got == [(2 * octets, octets, "crc_error"), (3 * octets, octets - truncate_octets, "truncated")]


def test_a_copy_received_after_newer_packets_is_a_duplicate_not_out_of_order():
    # Reception order 0 1 2 3 then 1 again (an overlapping pass resends it): one duplicate, nothing late.
    order = np.array([0, 1, 2, 3, 1])
    seq = order.astype(np.int64)
    obmt = T0_NS + order * HK_DT_NS
    files = np.array(["a.tm"] * 4 + ["b.tm"], dtype=object)
    found = sequence_anomalies(icd.APID_HK, seq, obmt, files, same)
    kept, gaps = found.keep, found.gaps
    assert sorted(seq[kept].tolist()) == [0, 1, 2, 3]
    assert [(r["first_seq"], r["file"]) for r in rows_of(gaps, "duplicate")] == [(1, "b.tm")]
    assert not rows_of(gaps, "out_of_order") and not rows_of(gaps, "gap")


# --- scan_file: bounded chunks give the rows of a whole-file scan -------------------------------------


@st.composite
def damaged_streams(draw) -> bytes:
    """About 300 kB of HK packets with bit flips, cut packets and garbage spans, anywhere."""
    stream = bytearray(hk_packets(0, 1500).reshape(-1).tobytes())
    for _ in range(draw(st.integers(0, 6))):
        at = draw(st.integers(0, len(stream) - 1))
        kind = draw(st.sampled_from(["flip", "cut", "garbage"]))
        if kind == "flip":
            stream[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "cut":
            del stream[at:at + draw(st.integers(1, 300))]
        else:
            stream[at:at] = draw(st.binary(min_size=1, max_size=400))
    return bytes(stream)


@given(damaged_streams(), st.integers(1, 80_000))
def test_chunked_scan_gives_the_rows_of_a_whole_file_scan(tmp_path_factory, data, chunk_octets):
    path = tmp_path_factory.mktemp("scan") / "a.tm"
    path.write_bytes(data)
    whole = icd.scan_stream(np.frombuffer(data, np.uint8))
    chunks = list(scan_file(path, chunk_octets))  # each chunk's index is its own array
    rows = np.concatenate([c.index for c in chunks] or [whole[:0]])
    offsets = np.concatenate([c.index["offset"] + c.base for c in chunks] or [whole["offset"][:0]])
    assert offsets.tolist() == whole["offset"].tolist()
    for name in ("octets", "apid", "seq", "status"):
        assert rows[name].tolist() == whole[name].tolist(), name


def test_a_garbage_span_longer_than_a_chunk_is_cut_into_chunk_sized_rows(tmp_path):
    garbage = np.zeros(3 * LOOKAHEAD_OCTETS, np.uint8)
    path = write(tmp_path / "a.tm", [hk_packets(0, 3), garbage, hk_packets(3, 3)])
    chunks = list(scan_file(path, chunk_octets=LOOKAHEAD_OCTETS))
    octets = np.concatenate([c.index["octets"] for c in chunks])
    status = np.concatenate([c.index["status"] for c in chunks])
    assert octets.sum() == path.stat().st_size  # the rows still tile the file
    assert (status == icd.STATUS_OK).sum() == 6
    assert octets.max() <= LOOKAHEAD_OCTETS


def test_digest_sees_every_octet_once(tmp_path):
    import hashlib

    path = write(tmp_path / "a.tm", [hk_packets(0, 2000)])
    digest = hashlib.sha256()
    for _ in scan_file(path, chunk_octets=10_000, digest=digest):
        pass
    assert digest.hexdigest() == hashlib.sha256(path.read_bytes()).hexdigest()


def test_late_flags_carry_the_newest_time_across_calls():
    flags, newest = late_flags(np.array([5, 3, 9]), 4)
    assert flags.tolist() == [False, True, False] and newest == 9
    flags, newest = late_flags(np.array([8, 10]), newest)
    assert flags.tolist() == [True, False] and newest == 10


def test_files_received_before_give_each_file_the_newest_time_per_apid():
    from pipeline.spool import newest_before

    summaries = [{"newest_ns": {"5": 10}}, {"newest_ns": {"5": 7, "6": 3}}, {"newest_ns": {}}]
    assert newest_before(summaries) == [{}, {5: 10}, {5: 10, 6: 3}]
