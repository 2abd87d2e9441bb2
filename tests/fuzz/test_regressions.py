"""Regressions found by fuzzing, each pinned by a deterministic test."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline import icd
from pipeline.kernels import ccsds as _k
from tests.fuzz import strategies as fz


@pytest.mark.parametrize("corrupt_fraction", [0.0, 0.01, 0.1])
def test_scanner_work_is_linear_in_a_damaged_stream(monkeypatch, corrupt_fraction):
    """After each anomaly the fast path used to walk and CRC-check the whole rest of the buffer, so a
    stream with 1 % corrupt packets took ~40x longer than an intact one, 10 % ~1000x (found by the long
    fuzz session). Each packet must now be walked and CRC-checked a bounded number of times."""
    tm = fz.encode_tm(np.random.default_rng(11), 5000)
    buf = tm.buf.copy()
    rng = np.random.default_rng(12)
    hit = rng.choice(len(tm.spans), int(corrupt_fraction * len(tm.spans)), replace=False)
    for i in hit:
        offset, octets = tm.spans[i]
        buf[offset + octets // 2] ^= 0x10
    walked, checked = [], []
    walk, crc_ok = _k._walk, _k._crc_ok

    def counting_walk(*args):
        k = walk(*args)
        walked.append(k)
        return k

    def counting_crc_ok(buf_, offsets, lengths, k, table, ok):
        checked.append(k)
        return crc_ok(buf_, offsets, lengths, k, table, ok)

    monkeypatch.setattr(_k, "_walk", counting_walk)
    monkeypatch.setattr(_k, "_crc_ok", counting_crc_ok)
    index = icd.scan_stream(buf)
    n = len(tm.spans)
    assert sum(walked) <= 3 * n, f"{sum(walked)} packet headers walked for {n} packets"
    assert sum(checked) <= 3 * n, f"{sum(checked)} packet CRCs checked for {n} packets"
    # Every intact packet comes back OK where it was put; every corrupt one lies in a quarantined row
    # (two corrupt neighbours may share one).
    ok = {(int(o), int(k)) for o, k in index[index["status"] == icd.STATUS_OK][["offset", "octets"]].tolist()}
    assert ok == {tm.spans[i] for i in sorted(set(range(n)) - set(hit.tolist()))}
    quarantined = index[index["status"] != icd.STATUS_OK]
    row = np.searchsorted(quarantined["offset"], [tm.spans[i][0] for i in hit], side="right") - 1
    ends = quarantined["offset"][row] + quarantined["octets"][row]
    assert np.all((row >= 0) & (ends >= [tm.spans[i][0] + tm.spans[i][1] for i in hit]))
