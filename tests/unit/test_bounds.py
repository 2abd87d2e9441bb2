"""The one-sided 95 % bounds (gaiasim.validate.bounds) against known values and scipy's binomial test, and the rate
check built on them (REQ-ALR-002): pass on the upper bound, fail on the estimate, n/a in between."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import binomtest, poisson

from gaiasim.validate import alert_checks, bounds, checks
from pipeline import schemas


def test_known_values():
    assert bounds.poisson_upper(0) == pytest.approx(2.9957, abs=1e-4)  # -ln 0.05: the "rule of three"
    assert bounds.poisson_upper(1) == pytest.approx(4.7439, abs=1e-4)
    assert bounds.poisson_upper(10) == pytest.approx(16.9622, abs=1e-4)
    assert bounds.clopper_pearson_lower(59, 59) == pytest.approx(0.05 ** (1 / 59)) == pytest.approx(0.9505, abs=1e-4)
    assert bounds.clopper_pearson_lower(20, 20) == pytest.approx(0.8609, abs=1e-4)
    assert bounds.clopper_pearson_lower(0, 10) == 0.0 and bounds.clopper_pearson_upper(10, 10) == 1.0
    assert 3.0 / 1e7 * 1e6 == pytest.approx(bounds.poisson_upper(0) / 1e7 * 1e6, rel=2e-3), "k = 0 in N: 3.0 / N"


@given(n=st.integers(1, 400), data=st.data())
def test_clopper_pearson_is_scipy_s_one_sided_exact_interval(n, data):
    k = data.draw(st.integers(0, n))
    ci = binomtest(k, n, alternative="greater").proportion_ci(confidence_level=0.95, method="exact")
    assert bounds.clopper_pearson_lower(k, n) == pytest.approx(ci.low, abs=1e-9)
    hi = binomtest(k, n, alternative="less").proportion_ci(confidence_level=0.95, method="exact")
    assert bounds.clopper_pearson_upper(k, n) == pytest.approx(hi.high, abs=1e-9)


@given(k=st.integers(0, 200))
def test_the_poisson_bound_leaves_5_percent_below_k(k):
    """At the upper bound mu, P(X <= k | mu) = 5 %."""
    assert poisson.cdf(k, bounds.poisson_upper(k)) == pytest.approx(0.05, abs=1e-9)


@pytest.mark.parametrize(("k", "n"), [(-1, 5), (6, 5), (0, 0)])
def test_bad_counts_are_refused(k, n):
    with pytest.raises(ValueError, match="need 0 <= k <= n"):
        bounds.clopper_pearson_lower(k, n)


# --- the rate check (REQ-ALR-002) -------------------------------------------------------------------------------

def _day(n_transits: int, n_false: int) -> duckdb.DuckDBPyConnection:
    """A run of ``n_transits`` transits (none in the truth's transients) raising ``n_false`` alerts."""
    con = duckdb.connect(":memory:")
    con.execute(f"CREATE TABLE transits AS SELECT range AS transit_id FROM range({n_transits})")
    rows = [{"alert_id": i, "kind": "brightening", "source_id": i, "ra_deg": 0.0, "dec_deg": 0.0, "g_mag": 15.0,
             "delta_g_mag": -1.5, "significance_sigma": 9.0, "n_transits": 2, "first_obmt_ns": 0, "last_obmt_ns": 1,
             "transit_ids": [i]} for i in range(n_false)]
    con.register("alerts", pa.Table.from_pylist(rows, schema=schemas.ALERTS))
    con.execute("CREATE TABLE truth_transits AS SELECT range AS transit_id, range AS source_id, 0::BIGINT AS obmt_ns,"
                f" 1::TINYINT AS fov FROM range({n_transits})")
    con.execute("CREATE TABLE truth_transients (source_id BIGINT, start_ns BIGINT, end_ns BIGINT, alert_kind VARCHAR,"
                " transient_id BIGINT, detectable BOOLEAN, class VARCHAR)")
    return con


@pytest.mark.parametrize(("n_transits", "n_false", "status"), [
    (5_000_000, 0, "pass"),  # upper bound 0.60 per 10^6
    (5_000_000, 3, "n/a"),  # 0.6 per 10^6, upper bound 1.55: insufficient exposure
    (5_000_000, 6, "FAIL"),  # 1.2 per 10^6 > 1
    (20_000, 0, "n/a"),  # a small day bounds the rate only to 150 per 10^6
    (20_000, 1, "FAIL"),  # one false alert on a small day is 50 per 10^6
])
def test_the_false_alert_rate_passes_only_on_its_upper_bound(n_transits, n_false, status):
    con = _day(n_transits, n_false)
    result = checks.evaluate(con, checks.get("no_false_alerts"), truth=True)
    assert result.status == status, result
    assert result.value == pytest.approx(1e6 * n_false / n_transits)
    assert con.execute(alert_checks.FALSE_ALERTS_SQL).fetchone()[0] == pytest.approx(result.value)
    if status == "n/a":
        upper = bounds.poisson_upper(n_false) / n_transits * 1e6
        assert result.note.startswith(f"insufficient exposure: {n_transits:.4g} transits bound the rate only to "
                                      f"{upper:.3g} alerts per 10^6 transits")


def test_a_run_without_transits_has_no_rate_to_measure():
    result = checks.evaluate(_day(0, 0), checks.get("no_false_alerts"), truth=True)
    assert result.status == "n/a" and result.value is None and result.note.startswith("nothing to measure: ")
