"""Second images: a blend's companion told apart from cosmic rays.

Two stars closer than the resolution limit share one window (docs/crowding-and-alerts-sources.md section 1,
item 4, and row 1.7: 0.23 arcsec AL, 0.70 arcsec AC). The fainter one's light is a second image at a fixed
offset from the brighter one's centre, the same in every window of the transit: the pair crosses the SM and
the nine AF CCDs together. Gaia's IPD fits one source per window and masks secondary sources (docs/facts.md
section 4, GDR2 doc 2.4.8: by a watershed on AF2-9); this pipeline finds them among its masked hits. The
IPD's cosmic-ray rejection (:data:`pipeline.ipd.COSMIC_SIGMA`) masks a second image's samples as it masks a
hit, and that keeps the primary's centre and flux right; but a cosmic ray hits one CCD, at a place of its own
in each window. So hits that recur at one offset from the fitted centre in :data:`MIN_WINDOWS` windows of a
transit are a second image: those windows are flagged :data:`FLAG_SECOND_IMAGE` instead of ``FLAG_COSMIC``, and
keep ``FLAG_COSMIC`` only for a hit elsewhere (a real cosmic ray on a blended window). The samples stay masked
(the photometry and the centres are the fit's).

Where a hit is: the centre of a run of samples the rejection masked (:data:`pipeline.ipd.MASK_COSMIC`; one
round masks the worst sample and its neighbours, so a run of 3 is centred on the sample it found, and rounds
on one image merge into one run), along scan; in a 2D window also the mean AC pixel of the run's masked
pixels. Its offset is that place less the window's centre (:func:`classify`).
"""

from __future__ import annotations

import numpy as np

from pipeline import ipd

#: CCD and transit flag: the cosmic-ray rejection masked a second image in this window (of this transit), a
#: companion closer than the resolution limit, not a cosmic ray. Transit flags in use: 1 << 16 to 1 << 21
#: (pipeline.transits), 1 << 22 (this).
FLAG_SECOND_IMAGE = 1 << 22

#: Windows of one transit (SM and AF1-AF9 alike: the pair crosses them all) whose hits lie at one offset that
#: make them a second image [U]. A cosmic ray hits a window of 12 x 12 px for 4.4 s with p ~ 0.0095 (a
#: particle flux of ~ 5 / cm^2 / s at L2 [U] over 10 x 30 um pixels, docs/facts.md section 2), so 3 of 10
#: windows hit within MAX_SPREAD_PX of one another by chance: ~ C(10, 3) p^3 (3 / 12)^2
#: ~ 6e-6 a transit, 2e-4 of the windows hit by cosmic rays (simulated: 2.3e-4); 2 of 10 would be ~ 1e-3 a transit,
#: 3 % of them (simulated: 1.7 %; tests/unit/test_second_image.py).
MIN_WINDOWS = 3
#: Hits at most this far apart (px, along scan; across scan too in 2D windows) are at one offset [U]: a run's
#: centre is on a whole or half sample, the fitted centre anywhere, so one image's offsets scatter by ~ 0.5 px.
MAX_SPREAD_PX = 1.0
#: A window's fitted centre further than this from its transit's median (px) took another star of a pair [U]:
#: the image's place in its window varies by ~ 0.5 px from CCD to CCD (sub-pixel phase, CCD geometry), and the
#: fit of a pair of like brightness 2-4 px apart lands on either star or between (measured on simulated
#: G 15.5 pairs 2 px apart: centres 1-2 px apart within one transit).
MAX_JUMP_PX = 0.75


def hits(mask: np.ndarray, flags: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The cosmic-ray hits a fit masked: ``(window, al_px, ac_px, half_px)``, one entry per run of
    :data:`pipeline.ipd.MASK_COSMIC` along scan in ``mask`` (w, n_al) or (w, n_al, n_ac) (the fits' ``mask``
    output), ``window`` the row of ``mask``, ``al_px`` the run's centre and ``half_px`` its half length (AL),
    ``ac_px`` the mean AC pixel of its masked pixels (NaN for 1D windows). In window order, then along scan.
    ``flags``: the fits' flags (w,), to read only the rows flagged ``FLAG_COSMIC`` (the only ones with hits: a
    few %; reading every row cost 6 % of the IPD's time)."""
    if flags is not None:
        rows = np.flatnonzero((np.asarray(flags) & ipd.FLAG_COSMIC) != 0)
        window, al, ac, half = hits(np.asarray(mask)[rows])
        return rows[window].astype(np.int64), al, ac, half
    hit = np.asarray(mask) == ipd.MASK_COSMIC
    if hit.ndim == 3:
        count = hit.sum(axis=2)
        ac_sum = (hit * np.arange(hit.shape[2])).sum(axis=2)
        line = count > 0
    else:
        line = hit
    w = line.shape[0]
    edge = np.zeros((w, 1), dtype=bool)
    start = line & ~np.concatenate([edge, line[:, :-1]], axis=1)
    end = line & ~np.concatenate([line[:, 1:], edge], axis=1)
    window, k0 = np.nonzero(start)
    _, k1 = np.nonzero(end)
    al = 0.5 * (k0 + k1)
    if hit.ndim == 3:
        cum_n = np.concatenate([np.zeros((w, 1)), np.cumsum(count, axis=1)], axis=1)
        cum_ac = np.concatenate([np.zeros((w, 1)), np.cumsum(ac_sum, axis=1)], axis=1)
        ac = (cum_ac[window, k1 + 1] - cum_ac[window, k0]) / (cum_n[window, k1 + 1] - cum_n[window, k0])
    else:
        ac = np.full(len(window), np.nan)
    return window.astype(np.int64), al, ac, 0.5 * (k1 - k0)


def _median(values: np.ndarray, members: np.ndarray) -> np.ndarray:
    """Median of each row's finite ``values`` where ``members`` (NaN for a row with none)."""
    return _nan_median_rows(np.where(members, values, np.nan))


def _nan_median_rows(values: np.ndarray) -> np.ndarray:
    """nanmedian of each row (NaN for an all-NaN row), those rows left out of nanmedian rather than its warning
    silenced: warnings.catch_warnings is not thread-safe, and the pipeline's hours run on threads."""
    out = np.full(len(values), np.nan)
    some = np.isfinite(values).any(axis=1)
    if some.any():
        out[some] = np.nanmedian(values[some], axis=1)
    return out


def classify(flags: np.ndarray, al_px: np.ndarray, ac_px: np.ndarray, window: np.ndarray, hit_al: np.ndarray,
             hit_ac: np.ndarray, hit_half: np.ndarray | None = None) -> np.ndarray:
    """The flags (m, k) of the k windows of m transits with the second images among their hits set apart.

    ``al_px``, ``ac_px`` (m, k): the windows' fitted centres (AC NaN for 1D windows); ``window``, ``hit_al``,
    ``hit_ac``, ``hit_half``: the hits (:func:`hits`; no ``hit_half``: 0), ``window`` a flat index into (m, k).

    A hit's offset is its place less its window's centre: the fitted one, or the transit's median fitted centre
    where the fit lies more than :data:`MAX_JUMP_PX` from that (a pair of like brightness: the one-star fit
    takes one star in some windows, the other or the middle in others). The offset shared, within
    :data:`MAX_SPREAD_PX`, by hits of the most windows of a transit is an image when they are
    :data:`MIN_WINDOWS` or more; the hits left may hold a second one (the same pair seen from its other star).
    Every window with a hit whose masked run reaches within :data:`MAX_SPREAD_PX` of an image's median offset
    (AL; its AC centre within MAX_SPREAD_PX + 0.5 px) gets :data:`FLAG_SECOND_IMAGE`, and loses
    ``FLAG_COSMIC`` when it has no other hit. (The rounds of the rejection on one image mask 3 to 6 samples, so
    a run's centre moves by up to 1.5 px with their number: its reach, not its centre, says whether it holds
    the image.)"""
    flags = np.array(flags, copy=True)
    m, k = flags.shape
    window = np.asarray(window, dtype=np.int64)
    if len(window) == 0:
        return flags
    transit, strip = window // k, window % k
    # Only transits with hits in MIN_WINDOWS windows can have a second image.
    windows_hit = np.zeros(m, dtype=np.int64)
    np.bitwise_or.at(windows_hit, transit, np.int64(1) << strip)
    candidate = np.bitwise_count(windows_hit) >= MIN_WINDOWS
    if not candidate[transit].any():
        return flags
    centre_al = _centres(np.asarray(al_px, dtype=np.float64), candidate)
    centre_ac = _centres(np.asarray(ac_px, dtype=np.float64), candidate)
    d_al = np.asarray(hit_al, dtype=np.float64) - centre_al.ravel()[window]
    d_ac = np.asarray(hit_ac, dtype=np.float64) - centre_ac.ravel()[window]
    half = np.zeros(len(window)) if hit_half is None else np.asarray(hit_half, dtype=np.float64)
    keep = candidate[transit] & np.isfinite(d_al)
    order = np.argsort(transit[keep], kind="stable")
    t, s = transit[keep][order], strip[keep][order]
    a, c, h = d_al[keep][order], d_ac[keep][order], half[keep][order]
    if not len(t):
        return flags
    # Pad each transit's hits into a row of (T, H).
    first = np.flatnonzero(np.r_[True, t[1:] != t[:-1]])
    size = np.diff(np.r_[first, len(t)])
    group = np.repeat(np.arange(len(first)), size)
    slot = np.arange(len(t)) - first[group]
    shape = (len(first), int(size.max()))
    pa, pc, ph = np.full(shape, np.nan), np.full(shape, np.nan), np.zeros(shape)
    ps = np.zeros(shape, dtype=np.int64)
    valid = np.zeros(shape, dtype=bool)
    pa[group, slot], pc[group, slot], ph[group, slot], ps[group, slot], valid[group, slot] = a, c, h, s, True
    with np.errstate(invalid="ignore"):
        near = (np.abs(pa[:, :, None] - pa[:, None, :]) <= MAX_SPREAD_PX) & valid[:, :, None] & valid[:, None, :]
        ac_diff = np.abs(pc[:, :, None] - pc[:, None, :])
    near &= (ac_diff <= MAX_SPREAD_PX) | np.isnan(ac_diff)
    rows = np.arange(shape[0])
    second = np.zeros(shape, dtype=bool)
    taken = np.zeros(shape, dtype=bool)
    for _ in range(2):  # an image, and the pair's other star where the fits took the first
        free = near & ~taken[:, :, None] & ~taken[:, None, :]
        support = np.bitwise_count(np.bitwise_or.reduce(np.where(free, np.int64(1) << ps[:, None, :], 0), axis=2))
        best = np.argmax(support, axis=1)
        found = support[rows, best] >= MIN_WINDOWS
        members = free[rows, best] & found[:, None]
        image_al = _median(pa, members)
        image_ac = _median(pc, members)
        with np.errstate(invalid="ignore"):
            ac_off = np.abs(pc - image_ac[:, None])
            second |= (valid & found[:, None] & (np.abs(pa - image_al[:, None]) <= MAX_SPREAD_PX + ph)
                       & ((ac_off <= MAX_SPREAD_PX + 0.5) | np.isnan(ac_off)))
        taken |= second
    # Per window: a second image among its hits, and any other hit (those without a finite offset included).
    flat = t[first][:, None] * k + ps
    has_second = np.zeros(m * k, dtype=bool)
    has_other = np.zeros(m * k, dtype=bool)
    has_second[flat[second]] = True
    has_other[flat[valid & ~second]] = True
    has_other[window[candidate[transit] & ~np.isfinite(d_al)]] = True
    has_second = has_second.reshape(m, k)
    has_other = has_other.reshape(m, k)
    flags |= np.where(has_second, FLAG_SECOND_IMAGE, 0).astype(flags.dtype)
    flags &= np.where(has_second & ~has_other, ~ipd.FLAG_COSMIC, -1).astype(flags.dtype)
    return flags


def _centres(fitted: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The windows' centres (m, k) that hits are offset from: each fitted one, or its transit's median where it
    lies more than :data:`MAX_JUMP_PX` from that (only for ``rows``; NaN elsewhere)."""
    out = np.full(fitted.shape, np.nan)
    sub = fitted[rows]
    median = _nan_median_rows(sub)[:, None]  # NaN for a transit without a fitted centre (or a 1D AC)
    with np.errstate(invalid="ignore"):
        out[rows] = np.where(np.abs(sub - median) <= MAX_JUMP_PX, sub, median)
    return out
