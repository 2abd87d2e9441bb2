"""One-sided 95 % confidence bounds for the checks that count rare things (docs/crowding-and-alerts-sources.md
section 3.3): a fraction found (recall) bounded below, a rate of events (false alerts) bounded above.

- :func:`clopper_pearson_lower`: the exact (Clopper-Pearson) lower bound of a binomial fraction after k
  successes in n trials, the ``1 - confidence`` quantile of Beta(k, n - k + 1); 0 when k = 0. With every trial a
  success it is ``(1 - confidence)^(1/n)``: 0.861 for n = 20, 0.9505 for n = 59 (so 59 detectable events all
  found are the fewest that show a recall of 95 % at 95 % confidence).
- :func:`poisson_upper`: the exact upper bound of a Poisson mean after k events, ``chi2.ppf(confidence, 2k + 2)
  / 2``: 2.996 for k = 0 (the "rule of three"). Divided by an exposure of N transits it bounds a rate: k = 0 in
  N transits bounds the false alerts per 10^6 transits to 3.0e6 / N.
"""

from __future__ import annotations

from scipy.special import betaincinv, chdtri  # scipy.special: scipy.stats costs ~0.5 s to import

CONFIDENCE = 0.95


def clopper_pearson_lower(k: int, n: int, confidence: float = CONFIDENCE) -> float:
    """One-sided lower bound of a fraction after ``k`` successes in ``n`` trials (n > 0)."""
    _counts(k, n)
    return 0.0 if k == 0 else float(betaincinv(k, n - k + 1, 1.0 - confidence))


def clopper_pearson_upper(k: int, n: int, confidence: float = CONFIDENCE) -> float:
    """One-sided upper bound of a fraction after ``k`` successes in ``n`` trials (n > 0)."""
    _counts(k, n)
    return 1.0 if k == n else float(betaincinv(k + 1, n - k, confidence))


def poisson_upper(k: int, confidence: float = CONFIDENCE) -> float:
    """One-sided upper bound of a Poisson mean after ``k`` events."""
    if k < 0:
        raise ValueError(f"k = {k}: a count of events must be >= 0")
    return float(chdtri(2 * k + 2, 1.0 - confidence) / 2.0)


def _counts(k: int, n: int) -> None:
    if n <= 0 or not 0 <= k <= n:
        raise ValueError(f"k = {k}, n = {n}: need 0 <= k <= n and n > 0")
