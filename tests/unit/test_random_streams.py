"""The simulator's counter-based random numbers (gaiasim.sim.kernels_random) against their distributions.

Draws are deterministic (a hash of key and counter), so each test is reproducible; the thresholds
(p > 1e-4 with 200,000 draws) would catch a sampler off by a fraction of a percent in any bin.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import pytest
from scipy import stats

from gaiasim.sim import kernels_random as ks

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
    for i in range(n):
        out[i], counter = ks.normal(key, counter)
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


# Means on and between the tables' grid points (integer + multiple of 1/64 + remainder), at the end of the
# tables (129), on the block tables (whole blocks of 128 and a rest, none at 256), at their end (4224) and on
# PTRS beyond them.
@pytest.mark.parametrize(
    "lam", [0.01, 0.3, 1.0, 3.0, 9.99, 10.0, 26.53, 30.0, 64.015625, 128.99, 129.0, 256.0, 300.0, 1000.25, 3000.0,
            4223.9, 4224.0, 1e5]
)
def test_poisson_sampler_follows_the_poisson_distribution(lam):
    draws = _poisson_draws(lam, 1, N_DRAWS)
    assert np.all(draws == np.floor(draws)) and draws.min() >= 0
    assert abs(draws.mean() - lam) < 5 * math.sqrt(lam / N_DRAWS)
    assert abs(draws.var() / lam - 1.0) < 5 * math.sqrt(2.0 / N_DRAWS) + 5 / math.sqrt(N_DRAWS * lam)
    assert _chi2_p(draws, lam) > 1e-4


def test_poisson_of_zero_negative_or_nan_mean_is_zero():
    assert ks.poisson(0.0, 1, 0)[0] == 0.0
    assert ks.poisson(-3.0, 1, 0)[0] == 0.0
    assert ks.poisson(math.nan, 1, 0) == (0.0, 0)


def test_alias_tables_reproduce_the_poisson_probabilities():
    """Each alias table, as the sampler reads it (packed heads and cells), gives every k back its probability
    (column share plus the shares aliased to it)."""
    n_int, n_frac = ks.POISSON_TABLE_MAX + 1, ks.POISSON_FRACTION_STEPS
    for head, cells, firsts, means in (
        (ks._INT_HEAD, ks._INT_CELLS, np.zeros(n_int), np.arange(n_int)),
        (ks._FRAC_HEAD, ks._FRAC_CELLS, np.zeros(n_frac), np.arange(n_frac) / n_frac),
        (ks._BLOCK_HEAD, ks._BLOCK_CELLS, ks._BLOCK_FIRST, ks.POISSON_TABLE_MAX * np.arange(1, ks.POISSON_BLOCKS + 1)),
    ):
        assert len(head) == len(means)
        for (o, size), first, mean in zip(head, firsts.astype(np.int64), means, strict=True):
            th, al = cells[2 * o:2 * (o + size):2], cells[2 * o + 1:2 * (o + size):2]
            assert np.array_equal(al, al.astype(np.int64)) and al.min() >= 0 and al.max() < size
            prob = th.copy()
            np.add.at(prob, al.astype(np.int64), 1.0 - th)
            k = first + np.arange(size)
            np.testing.assert_allclose(prob / size, stats.poisson.pmf(k, mean), rtol=1e-9, atol=1e-15)
            # Nothing of weight left out below the first k or after the last.
            assert stats.poisson.cdf(first - 1, mean) < 1e-15 and stats.poisson.sf(k[-1], mean) < 1e-15


def test_log_factorial_equals_lgamma():
    k = np.r_[np.arange(0, 200), np.geomspace(200, 1e9, 200).round()]
    got = np.array([ks.log_factorial(float(x)) for x in k])
    want = np.array([math.lgamma(x + 1.0) for x in k])
    np.testing.assert_allclose(got, want, rtol=1e-14, atol=1e-14)


def test_normals_are_standard_normal():
    draws = _normal_draws(3, N_DRAWS)
    assert stats.kstest(draws, "norm").pvalue > 1e-4
    # Successive draws are independent.
    assert abs(np.corrcoef(draws[:-1], draws[1:])[0, 1]) < 5 / math.sqrt(N_DRAWS)


def test_normal_tails_and_wedges_follow_the_distribution():
    """The ziggurat's rare paths (the wedges, ~1 % of draws, and the tail beyond r = 3.654, 2.6e-4)
    have the right mass: 4e6 draws in bins of the normal's quantiles, up to 6 sigma."""
    draws = _normal_draws(11, 4_000_000)
    edges = np.r_[-np.inf, stats.norm.ppf(np.linspace(0.0, 1.0, 201)[1:-1]), np.inf]
    observed = np.histogram(draws, edges)[0]
    assert stats.chisquare(observed).pvalue > 1e-4
    for cut in (2.0, 3.0, ks._ZIG_R, 4.5):
        expected = 2 * stats.norm.sf(cut) * len(draws)
        assert abs((np.abs(draws) > cut).sum() - expected) < 5 * math.sqrt(expected) + 1
    assert np.abs(draws).max() < 7.0


def test_uniforms_are_uniform_and_differ_between_keys():
    u = ks.uniform_array(7, np.arange(N_DRAWS, dtype=np.int64), 0)
    assert 0.0 < u.min() and u.max() < 1.0
    assert stats.kstest(u, "uniform").pvalue > 1e-4
    other = ks.uniform_array(8, np.arange(N_DRAWS, dtype=np.int64), 0)
    assert abs(np.corrcoef(u, other)[0, 1]) < 5 / math.sqrt(N_DRAWS)
