"""Fuzzing the TM path (scanner, decoder, whole-file ingest) and the fault-plan parser.

Properties: nothing raises but a :class:`~gaiasim.spec.SpecError` for a bad plan; nothing hangs (the
deadline bounds a slow example, :func:`tests.fuzz.targets.watchdog` a stuck one); the scanned rows tile
each buffer; packets read == decoded + quarantined per buffer, and read == used + duplicates +
quarantined for whole files. The regular profiles run a few hundred examples; ``nox -s fuzz``
(``HYPOTHESIS_PROFILE=fuzz``) runs the same tests for a long hunt and reports the inputs run.
"""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gaiasim.sim import faults, hk_faults, variability
from gaiasim.spec import SpecError
from pipeline import icd
from tests.fuzz import crafted
from tests.fuzz import strategies as fz
from tests.fuzz.targets import check_buffer, chunked_scan, ingest_counts, run_crafted, tally, watchdog
from tests.tm import DAY_NS, T0_NS

#: Inputs derived from one example's seed in the batch tests.
BATCH = 25
#: Slowest acceptable example (the machine is shared: generous, a hang is the watchdog's job).
SINGLE = settings(deadline=timedelta(seconds=5))
BATCHED = settings(deadline=timedelta(seconds=30))


@pytest.fixture(scope="module", autouse=True)
def _compiled_serial():
    """One numba thread (a parallel launch costs milliseconds on a busy machine, far more than a fuzz
    buffer's scan), and every kernel compiled once, outside any example's deadline."""
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    tm = fz.encode_tm(np.random.default_rng(0), 30)
    check_buffer(tm.buf)
    check_buffer(tm.buf[:-3])
    yield
    numba.set_num_threads(threads)


# --- scanner and decoder, one buffer -------------------------------------------------------------------


@SINGLE
@given(fz.arbitrary_bytes())
def test_scanner_on_arbitrary_bytes(buf):
    with watchdog():
        check_buffer(buf)
    tally("arbitrary_bytes")


@SINGLE
@given(fz.mutated_tm())
def test_scanner_on_mutated_telemetry(buf):
    with watchdog():
        check_buffer(buf)
    tally("mutated_tm")


@BATCHED
@given(fz.random_batches())
def test_scanner_on_batches_of_random_buffers(seed):
    bufs = fz.random_buffers(seed, BATCH)
    with watchdog():
        for buf in bufs:
            check_buffer(buf)
    tally("random_buffer_batches", len(bufs))


@BATCHED
@given(fz.mutation_batches())
def test_scanner_on_batches_of_mutated_telemetry(case):
    seed, base, other = case
    bufs = fz.mutate_batch(seed, base, other, BATCH)
    with watchdog():
        for buf in bufs:
            check_buffer(buf)
    tally("mutated_tm_batches", len(bufs))


def test_intact_telemetry_is_all_good():
    """The mutants' parent streams really are valid: every packet comes back OK where it was put."""
    tm = fz.encode_tm(np.random.default_rng(1), 200)
    index = icd.scan_stream(tm.buf)
    assert np.all(index["status"] == icd.STATUS_OK)
    assert [(int(o), int(n)) for o, n in index[["offset", "octets"]].tolist()] == list(tm.spans)


# --- whole-file ingest ---------------------------------------------------------------------------------


# Each example is a whole run (~0.2 s): the long hunt takes 2,000 of them (its buffers are mostly
# quarantined before the hours stage; the crafted batches below reach the rest).
@settings(deadline=timedelta(seconds=30), max_examples=min(settings.default.max_examples, 2000))
@given(st.lists(st.one_of(fz.mutated_tm(), fz.arbitrary_bytes(), fz.valid_tm().map(lambda tm: tm.buf)),
                min_size=1, max_size=4))
def test_ingest_conserves_packets_over_files(bufs):
    expected_read = sum(len(icd.scan_stream(b)) for b in bufs)
    with tempfile.TemporaryDirectory(prefix="gaiasim-fuzz-") as tmp, watchdog():
        c = ingest_counts(bufs, Path(tmp))
    assert c["packets_read"] == expected_read, f"{c['packets_read']} packets read, the scanner found {expected_read}"
    balance = c["packets_used"] + c["duplicates_dropped"] + c["packets_quarantined"]
    assert c["packets_read"] == balance, f"read {c['packets_read']} != used + duplicates + quarantined = {balance}"
    assert c["quarantine_rows"] == c["packets_quarantined"], "quarantine table and count disagree"
    tally("ingest_files", len(bufs))


@settings(deadline=timedelta(seconds=60), max_examples=min(settings.default.max_examples, 1000))
@given(fz.mutation_batches(max_packets=300), st.integers(1, 40_000))
def test_chunked_scan_equals_the_whole_file_scan(case, chunk_octets):
    """The ingest scans a file in bounded chunks: whatever the chunk size, the rows tile the file, each
    chunk conserves its packets, and the good packets are those of one scan of the whole file."""
    seed, base, other = case
    buf = fz.mutate_batch(seed, base, other, 1, max_stack=8)[0]
    whole = icd.scan_stream(buf)
    with tempfile.TemporaryDirectory(prefix="gaiasim-fuzz-") as tmp:
        path = Path(tmp) / "pass.tm"
        path.write_bytes(buf.tobytes())
        with watchdog():
            rows = chunked_scan(path, chunk_octets)
    assert int(rows["octets"].sum()) == buf.size, f"chunk rows cover {int(rows['octets'].sum())} of {buf.size}"
    assert np.array_equal(rows["offset"][1:], (rows["offset"] + rows["octets"])[:-1]), "chunk rows not contiguous"
    ok, want = rows[rows["status"] == icd.STATUS_OK], whole[whole["status"] == icd.STATUS_OK]
    assert ok.tolist() == want.tolist(), f"chunks of {chunk_octets} octets: good packets differ from the whole file's"
    tally("chunked_scan_files")


# --- crafted packets through the whole pipeline ---------------------------------------------------------

#: The crafted day; its packets' times mostly fall in its first two hours.
SPAN = (T0_NS, T0_NS + DAY_NS)
#: The long hunt (HYPOTHESIS_PROFILE=fuzz: thousands of examples) runs 600 examples of 2,000 crafted packets
#: each (1.2 M inputs, ~10 min on 2 cores); the other profiles 8 of 300 (a few seconds in CI).
LONG_HUNT = settings.default.max_examples >= 1000
CRAFTED_EXAMPLES, CRAFTED_PACKETS = (600, 2000) if LONG_HUNT else (8, 300)


@settings(deadline=timedelta(seconds=60), max_examples=min(settings.default.max_examples, 25))
@given(st.lists(crafted.crafted_fields(SPAN), min_size=1, max_size=3))
def test_crafted_packets_never_break_the_run(files):
    """Hypothesis-drawn fields (shrinkable): whatever a CRC-valid packet says, the run stands."""
    with tempfile.TemporaryDirectory(prefix="gaiasim-fuzz-") as tmp, watchdog():
        run_crafted([crafted.encode(f) for f in files], Path(tmp), SPAN)
    tally("crafted_packets", sum(len(f) for f in files))


@settings(deadline=timedelta(seconds=120), max_examples=CRAFTED_EXAMPLES)
@given(st.integers(0, 2**32 - 1), st.integers(1, 3))
def test_batches_of_crafted_packets_never_break_the_run(seed, n_files):
    """Thousands of crafted packets a run, drawn with numpy from one seed: the long hunt's >= 10^6 inputs."""
    rng = np.random.default_rng(seed)
    fields = crafted.random_fields(rng, CRAFTED_PACKETS, SPAN)
    cuts = np.sort(rng.integers(0, len(fields), n_files - 1))
    with tempfile.TemporaryDirectory(prefix="gaiasim-fuzz-") as tmp, watchdog():
        run_crafted([crafted.encode(part) for part in np.split(fields, cuts)], Path(tmp), SPAN)
    tally("crafted_packet_batches", len(fields))


# --- fault plans ---------------------------------------------------------------------------------------


@SINGLE
@given(fz.fault_plan_texts())
def test_fault_plan_is_parsed_or_refused_with_a_spec_error(text):
    with tempfile.TemporaryDirectory(prefix="gaiasim-fuzz-") as tmp:
        path = Path(tmp) / "plan.toml"
        path.write_text(text, encoding="utf-8")
        for parse in (faults.load_plan, variability.load_plan):
            try:
                parse(path)
            except SpecError as exc:
                message = str(exc)
                assert message and "\n" not in message, f"a SpecError must be one line: {message!r}"
    tally("fault_plans")


@SINGLE
@given(fz.fault_plan_tables())
def test_hk_fault_plan_is_valid_or_a_spec_error(table):
    try:
        hk_faults.hk_plan_from(table)
    except SpecError:
        pass
    tally("hk_fault_plans")
