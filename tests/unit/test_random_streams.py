"""The simulator's counter-based random numbers (gaiasim.sim.kernels_signal) against their distributions.

Draws are deterministic (a hash of key and counter), so each test is reproducible; the thresholds
(p > 1e-4 with 200,000 draws) would catch a sampler off by a fraction of a percent in any bin.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import pytest
from scipy import stats

from gaiasim.sim import kernels_signal as ks

N_DRAWS = 200_000


@numba.njit
def _poisson_draws(lam, seed, n):
    key = ks.stream_key(seed, 17)
    out = np.empty(n)
    counter = 0
    for i in range(n):
        out[i], counter = ks.poisson(lam, key, counter)
    return out


@numba.njit
def _normal_draws(seed, n):
    key = ks.stream_key(seed, 5)
    out = np.empty(n)
    counter = 0
    for i in range(0, n, 2):
        out[i], out[i + 1], counter = ks.normal_pair(key, counter)
    return out


def _chi2_p(draws: np.ndarray, lam: float) -> float:
    """Chi-square p-value of Poisson(lam) draws, bins with >= 20 expected counts (tails pooled)."""
    lo, hi = int(stats.poisson.ppf(1e-5, lam)), int(stats.poisson.isf(1e-5, lam))
    ks_ = np.arange(lo, hi + 1)
    expected = stats.poisson.pmf(ks_, lam) * len(draws)
    observed = np.array([(draws == k).sum() for k in ks_], dtype=float)
    expected = np.r_[stats.poisson.cdf(lo - 1, lam) * len(draws), expected, stats.poisson.sf(hi, lam) * len(draws)]
    observed = np.r_[(draws < lo).sum(), observed, (draws > hi).sum()]
    keep = expected >= 20
    e, o = np.r_[expected[keep], expected[~keep].sum()], np.r_[observed[keep], observed[~keep].sum()]
    if e[-1] == 0:
        e, o = e[:-1], o[:-1]
    return float(stats.chisquare(o, e * o.sum() / e.sum()).pvalue)


@pytest.mark.parametrize("lam", [0.3, 3.0, 9.99, 10.0, 30.0, 300.0, 3000.0, 1e5])
def test_poisson_sampler_follows_the_poisson_distribution(lam):
    draws = _poisson_draws(lam, 1, N_DRAWS)
    assert np.all(draws == np.floor(draws)) and draws.min() >= 0
    assert abs(draws.mean() - lam) < 5 * math.sqrt(lam / N_DRAWS)
    assert abs(draws.var() / lam - 1.0) < 5 * math.sqrt(2.0 / N_DRAWS) + 5 / math.sqrt(N_DRAWS * lam)
    assert _chi2_p(draws, lam) > 1e-4


def test_poisson_of_zero_or_negative_mean_is_zero():
    assert ks.poisson(0.0, 1, 0)[0] == 0.0
    assert ks.poisson(-3.0, 1, 0)[0] == 0.0


def test_log_factorial_equals_lgamma():
    k = np.r_[np.arange(0, 200), np.geomspace(200, 1e9, 200).round()]
    got = np.array([ks.log_factorial(float(x)) for x in k])
    want = np.array([math.lgamma(x + 1.0) for x in k])
    np.testing.assert_allclose(got, want, rtol=1e-14, atol=1e-14)


def test_normal_pairs_are_standard_normal():
    draws = _normal_draws(3, N_DRAWS)
    assert stats.kstest(draws, "norm").pvalue > 1e-4
    # The two members of a pair are independent.
    assert abs(np.corrcoef(draws[0::2], draws[1::2])[0, 1]) < 5 / math.sqrt(N_DRAWS / 2)


def test_uniforms_are_uniform_and_differ_between_keys():
    u = ks.uniform_array(7, np.arange(N_DRAWS, dtype=np.int64), 0)
    assert 0.0 < u.min() and u.max() < 1.0
    assert stats.kstest(u, "uniform").pvalue > 1e-4
    other = ks.uniform_array(8, np.arange(N_DRAWS, dtype=np.int64), 0)
    assert abs(np.corrcoef(u, other)[0, 1]) < 5 / math.sqrt(N_DRAWS)
