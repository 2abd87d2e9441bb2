"""Numba kernels of the simulator's counter-based random numbers: uniform, normal and Poisson deviates.

Every draw is a hash of (key, counter), the key derived from the seed and an item (a transit id, a sky
pixel): an item's draws depend only on (seed, item), never on how items are split over threads, slices
or processes, so generation is byte-identical whatever the parallelism. Samplers take the counter of
their first draw and return the next free one.

The window renderer draws one normal and one Poisson deviate per sample (~1e10 a day at scale 1), so
both samplers are table driven and exact up to float64 rounding of their tables:

- normal: Marsaglia & Tsang's ziggurat (J. Stat. Softw. 5(8), 2000) with 256 layers, one 64-bit hash
  per draw for ~99 % of draws (layer, sign and a 53-bit abscissa from disjoint bits);
- Poisson: below :data:`POISSON_TABLE_MAX` + 1 the mean is split as n + j / 64 + delta (delta < 1/64) and
  the deviate is the sum of independent Poisson deviates of each part (Poisson variables add): n and
  j / 64 from Walker alias tables (Vose 1991), delta by sequential inversion, whose first step needs no
  exponential (P(0) = exp(-delta) >= 1 - delta); up to :data:`POISSON_BLOCK_MAX` a whole number of blocks
  of 128 is split off first, drawn from the alias table of Poisson(128 q), and the rest as below 129 (a
  window's samples sit on ~285 e- of binned sky: most of them are here); above it, Hormann's PTRS
  transformed rejection (Insurance Math. Econom. 12, 1993), as numpy's generator.

Measured on one core of this 2-core machine (``tests/unit/test_random_streams.py`` checks the
distributions): ~13-20 ns a Poisson deviate below 129 e- (21 ns before the alias tables were packed, 42 ns
with PTRS), ~22 ns from 129 to 600 e- with the block tables (~32 ns with PTRS), ~7 ns a normal (10 ns
with the polar method).

The Poisson sampler's table helpers (``_poisson_table``, ``_poisson_small``, ``_alias_draw``) are inlined into
it (``jit_inline``): as separate functions, LLVM left ``_poisson_table`` a call through numba's calling
convention (a status return, results through memory, registers spilled around an ``exp`` call). The same
deviates, cheaper: the 1D windows 42.8 -> 38.8 ns a sample, the spectra 29.6 -> 27.1 (synthetic inputs, one
thread, best of 7, 2026-12-07). Inlining ``poisson`` and ``normal`` themselves into the renderers as well
reached 36.8 and 24.2 ns, but added ~12 s of cold compilation to every process that generates (31 -> 44 s for
the ``tiny`` level with an empty cache) and did not show on the whole full day (821 s before, 823 s after).
Inlining only the common paths (the ziggurat's one-draw acceptance and the Poisson table range, calling the full
samplers otherwise, the same deviates) measured on a real slice: 1D windows 38.9 -> 38.6 ns a sample, 2D windows
29.6 -> 25.2, spectra 27.2 -> 25.3, for +4.8 s of cold compilation (31.0-31.4 -> 35.8-36.3 s for ``tiny``):
~1.5 % of a full day, not kept (2026-12-07).
"""

from __future__ import annotations

import math

import numpy as np

from gaiasim.sim.jit import jit, jit_inline

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_TWO_M53 = 1.0 / 9007199254740992.0


@jit
def mix64(z):
    """SplitMix64 finaliser (Steele, Lea & Flood 2014): a bijective 64-bit hash."""
    z = np.uint64(z)
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


@jit
def stream_key(seed, item):
    """Key of the random stream of ``item`` (e.g. a transit id) under ``seed``."""
    return mix64(mix64(np.uint64(seed) + _GOLDEN) ^ np.uint64(item))


@jit
def uniform(key, counter):
    """Uniform in (0, 1) from draw number ``counter`` of stream ``key``."""
    z = mix64(key + np.uint64(counter) * _GOLDEN)
    return (np.float64(z >> np.uint64(11)) + 0.5) * _TWO_M53


@jit
def uniform_array(seed, transit_id, counter):
    """Draw ``counter`` of the window stream of each transit: uniforms in (0, 1), shape of ``transit_id``."""
    out = np.empty(transit_id.shape[0])
    for i in range(transit_id.shape[0]):
        out[i] = uniform(stream_key(seed, transit_id[i]), counter)
    return out


# --- normal: ziggurat ------------------------------------------------------------------------------------

#: Layers of the ziggurat, the abscissa of the base layer's right edge and the common layer area
#: (Marsaglia & Tsang 2000, 256-layer constants, as numpy's ``ziggurat_constants.h``).
_ZIG_LAYERS = 256
_ZIG_R = 3.6541528853610088
_ZIG_AREA = 0.00492867323399


def _ziggurat_tables():
    """(width, accept, f) per layer. Layer i >= 1 spans [0, x_i] x [f(x_i), f(x_{i-1})] (x_255 = r, x_0 = 0,
    f the unnormalised density exp(-x^2/2)); an abscissa U x_i is inside the curve when U < x_{i-1}/x_i.
    Layer 0 is the base strip: the rectangle [0, r] x [0, f(r)] and the tail, of equivalent width
    area / f(r)."""
    x = np.zeros(_ZIG_LAYERS)
    x[-1] = _ZIG_R
    for i in range(_ZIG_LAYERS - 2, 0, -1):
        x[i] = math.sqrt(-2.0 * math.log(_ZIG_AREA / x[i + 1] + math.exp(-0.5 * x[i + 1] ** 2)))
    f = np.exp(-0.5 * x * x)
    width = x.copy()
    width[0] = _ZIG_AREA / math.exp(-0.5 * _ZIG_R**2)
    accept = np.zeros(_ZIG_LAYERS)
    accept[2:] = x[1:-1] / x[2:]
    accept[0] = _ZIG_R / width[0]
    return width, accept, f


_ZIG_WIDTH, _ZIG_ACCEPT, _ZIG_F = _ziggurat_tables()


@jit
def normal(key, counter):
    """Standard normal deviate and the next counter (ziggurat: one draw ~99 % of the time)."""
    while True:
        z = mix64(key + np.uint64(counter) * _GOLDEN)
        counter += 1
        layer = np.int64(z & np.uint64(255))
        negative = (z >> np.uint64(8)) & np.uint64(1)
        u = np.float64(z >> np.uint64(11)) * _TWO_M53
        x = u * _ZIG_WIDTH[layer]
        if u < _ZIG_ACCEPT[layer]:
            return (-x if negative else x), counter
        if layer == 0:
            # Tail beyond r (Marsaglia 1964): r + a with a ~ Exp(r) accepted with probability exp(-a^2/2).
            while True:
                a = -math.log(uniform(key, counter)) / _ZIG_R
                b = -math.log(uniform(key, counter + 1))
                counter += 2
                if b + b >= a * a:
                    x = _ZIG_R + a
                    return (-x if negative else x), counter
        # Wedge of layer i: accept under the curve, else start again with a fresh draw.
        y = _ZIG_F[layer] + uniform(key, counter) * (_ZIG_F[layer - 1] - _ZIG_F[layer])
        counter += 1
        if y < math.exp(-0.5 * x * x):
            return (-x if negative else x), counter


# --- Poisson ---------------------------------------------------------------------------------------------

#: Largest integer mean with a tabulated distribution; means below POISSON_TABLE_MAX + 1 use the tables
#: (the sky background of a 1D AF sample is ~27 e-, of a 2D pixel ~2 e-; faint stars add tens of e-).
POISSON_TABLE_MAX = 128
#: Fractional means are tabulated on a grid of 1 / POISSON_FRACTION_STEPS.
POISSON_FRACTION_STEPS = 64


#: Above POISSON_TABLE_MAX, whole blocks of POISSON_TABLE_MAX come from the tables of Poisson(128 q),
#: q = 1 .. POISSON_BLOCKS (their columns trimmed to the mean +- 12 sigma + 30: ~35,000 cells, 0.6 MB).
POISSON_BLOCKS = 32
POISSON_BLOCK_MAX = POISSON_TABLE_MAX * (POISSON_BLOCKS + 1.0)


def _alias_tables(means) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Walker alias tables (Vose's construction, IEEE TSE 17(9), 1991) of Poisson(mean) for each mean:
    (offsets, sizes, first k, threshold, alias), the tables concatenated. A table covers k = k_lo .. k_hi,
    from and past the points where the probability falls below 1e-20 (k_lo = 0 up to a mean of ~200); the
    tail mass left out (< 1e-18) is dropped and the rest renormalised."""
    offsets, firsts, thresholds, aliases = [0], [], [], []
    for mean in means:
        k_lo = max(0, int(mean - 12.0 * math.sqrt(mean)) - 30)
        k_hi = int(mean + 12.0 * math.sqrt(mean)) + 30
        k = np.arange(k_lo, k_hi + 1, dtype=np.float64)
        if mean == 0.0:
            pmf = (k == 0).astype(np.float64)
        else:
            pmf = np.exp(k * math.log(mean) - mean - np.array([math.lgamma(x + 1.0) for x in k]))
        assert pmf[-1] < 1e-20 and (k_lo == 0 or pmf[0] < 1e-20), (mean, pmf[0], pmf[-1])
        scaled = list(pmf / math.fsum(pmf) * len(pmf))
        threshold, alias = np.ones(len(pmf)), np.arange(len(pmf))
        small = [i for i, p in enumerate(scaled) if p < 1.0]
        large = [i for i, p in enumerate(scaled) if p >= 1.0]
        while small and large:
            s, g = small.pop(), large.pop()
            threshold[s], alias[s] = scaled[s], g
            scaled[g] -= 1.0 - scaled[s]
            (small if scaled[g] < 1.0 else large).append(g)
        thresholds.append(threshold)  # columns left in either list keep threshold 1 (rounding residue)
        aliases.append(alias)
        offsets.append(offsets[-1] + len(pmf))
        firsts.append(k_lo)
    offsets = np.array(offsets, dtype=np.int64)
    return (offsets[:-1], np.diff(offsets), np.array(firsts, dtype=np.int64), np.concatenate(thresholds),
            np.concatenate(aliases).astype(np.int64))


def _packed(offsets, sizes, threshold, alias) -> tuple[np.ndarray, np.ndarray]:
    """The alias tables as the sampler reads them: ``head`` int32 (tables, 2) = (offset, size) and ``cells``
    float64 (2 * columns,) = (threshold, alias) side by side. A draw then reads one 8-byte head and one
    16-byte cell (one cache line) instead of four arrays: ~20 % faster Poisson deviates, the same values
    (an alias index is exact in float64)."""
    head = np.stack([offsets, sizes], axis=1).astype(np.int32)
    cells = np.empty(2 * len(threshold))
    cells[0::2] = threshold
    cells[1::2] = alias
    return head, cells


def _tables(means) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(head, cells, first k as float) of the alias tables of ``means``."""
    offsets, sizes, firsts, threshold, alias = _alias_tables(means)
    return *_packed(offsets, sizes, threshold, alias), firsts.astype(np.float64)


_INT_HEAD, _INT_CELLS, _ = _tables(range(POISSON_TABLE_MAX + 1))  # first k: all 0
_FRAC_HEAD, _FRAC_CELLS, _ = _tables(np.arange(POISSON_FRACTION_STEPS) / POISSON_FRACTION_STEPS)
_BLOCK_HEAD, _BLOCK_CELLS, _BLOCK_FIRST = _tables(POISSON_TABLE_MAX * np.arange(1, POISSON_BLOCKS + 1))


@jit_inline
def _alias_draw(head, cells, table, u):
    """Draw from Walker alias table number ``table`` with one uniform: its integer part picks the column,
    the rest the side."""
    size = head[table, 1]
    x = u * size
    column = min(int(x), size - 1)
    cell = 2 * (head[table, 0] + column)
    other = cells[cell + 1]  # read unconditionally: the choice below is then a select, not a branch
    return float(column) if x - column < cells[cell] else other


_LOG_FACTORIAL_TABLE = np.array([math.lgamma(k + 1.0) for k in range(16)])
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


@jit
def log_factorial(k):
    """``ln k!`` of a whole number ``k >= 0`` (float): a table below 16, else Stirling's series to 1/x^7
    (truncation below 1e-15 relative), as numpy's ``random_loggam``."""
    if k < 16.0:
        return _LOG_FACTORIAL_TABLE[int(k)]
    x = k + 1.0
    r = 1.0 / (x * x)
    series = (1.0 / 12.0 - r * (1.0 / 360.0 - r * (1.0 / 1260.0 - r / 1680.0))) / x
    return (x - 0.5) * math.log(x) - x + _HALF_LOG_2PI + series


@jit_inline
def _poisson_small(delta, u):
    """Poisson deviate of mean ``delta`` < 1 from the uniform ``u`` by sequential inversion; the CDF at 0,
    exp(-delta), is at least 1 - delta, so most draws of a small mean need no exponential."""
    if u <= 1.0 - delta:
        return 0
    p = math.exp(-delta)
    cdf = p
    k = 0
    while u > cdf and k < 40:
        k += 1
        p *= delta / k
        cdf += p
    return k


@jit
def _poisson_ptrs(lam, key, counter):
    """Poisson deviate of mean ``lam`` >= 10 by Hormann's PTRS; returns (value, next counter)."""
    b = 0.931 + 2.53 * math.sqrt(lam)
    a = -0.059 + 0.02483 * b
    vr = 0.9277 - 3.6224 / (b - 2.0)
    while True:
        u = uniform(key, counter) - 0.5
        v = uniform(key, counter + 1)
        counter += 2
        us = 0.5 - abs(u)
        k = math.floor((2.0 * a / us + b) * u + lam + 0.43)
        if us >= 0.07 and v <= vr:
            return k, counter
        if k < 0.0 or (us < 0.013 and v > us):
            continue
        # Slow path: the exact acceptance test, with a Stirling log-factorial (libm's lgamma is ~3x slower).
        lhs = math.log(v * (1.1239 + 1.1328 / (b - 3.4)) / (a / (us * us) + b))
        if lhs <= -lam + k * math.log(lam) - log_factorial(k):
            return k, counter


@jit_inline
def _poisson_table(lam, key, counter):
    """Poisson deviate of mean 0 < ``lam`` < POISSON_TABLE_MAX + 1: lam = n + j / POISSON_FRACTION_STEPS +
    delta, a draw from the alias table of each of the first two and a sequential inversion for delta
    (three draws of the stream)."""
    n = int(lam)
    steps = (lam - n) * POISSON_FRACTION_STEPS
    j = min(int(steps), POISSON_FRACTION_STEPS - 1)
    delta = (steps - j) * (1.0 / POISSON_FRACTION_STEPS)
    k = _alias_draw(_INT_HEAD, _INT_CELLS, n, uniform(key, counter))
    k += _alias_draw(_FRAC_HEAD, _FRAC_CELLS, j, uniform(key, counter + 1))
    k += _poisson_small(delta, uniform(key, counter + 2))
    return k, counter + 3


@jit
def poisson(lam, key, counter):
    """Poisson deviate of mean ``lam`` (0 when ``lam`` <= 0 or NaN); returns (value as float, next counter).

    Below POISSON_TABLE_MAX + 1 from the tables (:func:`_poisson_table`); below POISSON_BLOCK_MAX, q whole
    blocks of POISSON_TABLE_MAX from the table of Poisson(128 q) (one draw) plus the rest from the tables;
    above, PTRS.
    """
    if not lam > 0.0:  # NaN too: it would index the tables out of bounds
        return 0.0, counter
    if lam < POISSON_TABLE_MAX + 1.0:
        return _poisson_table(lam, key, counter)
    if lam < POISSON_BLOCK_MAX:
        q = int(lam * (1.0 / POISSON_TABLE_MAX))  # >= 1; 1/128 is exact, so the rest is >= 0
        k = _BLOCK_FIRST[q - 1] + _alias_draw(_BLOCK_HEAD, _BLOCK_CELLS, q - 1, uniform(key, counter))
        rest = lam - q * POISSON_TABLE_MAX
        if rest > 0.0:
            k2, counter = _poisson_table(rest, key, counter + 1)
            return k + k2, counter
        return k, counter + 1
    return _poisson_ptrs(lam, key, counter)
