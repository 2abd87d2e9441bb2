"""Brute-force oracles of the on-board window conflicts, blends and truncated windows (gaiasim.sim.vpu.conflicts,
blends, truncations) and of the pipeline's bright-star environment (pipeline.environment.bright_environment):
every pair, one at a time."""

from __future__ import annotations

import numpy as np

#: Window length along scan per window class, TDI periods, and the AC width, px (docs/icd.md section 2).
WINDOW_AL = {0: 18, 1: 18, 2: 12}
WINDOW_AC = 12


def conflicts(obmt_ns, ccd_row, ac_pos_px, window_class, g_onboard, transit_id, tdi_period_ns):
    """(lost, blocker) of every detection: lost when its centre lies strictly inside the window of a
    detection of higher priority (lower on-board G, then lower transit id) on the same row; the blocker is
    the highest-priority such detection (-1 when none)."""
    n = len(obmt_ns)
    lost = np.zeros(n, dtype=bool)
    blocker = np.full(n, -1, dtype=np.int64)
    for i in range(n):
        best = -1
        for j in range(n):
            if j == i or ccd_row[j] != ccd_row[i]:
                continue
            higher = (g_onboard[j], transit_id[j]) < (g_onboard[i], transit_id[i])
            inside = (abs(int(obmt_ns[i]) - int(obmt_ns[j])) < WINDOW_AL[int(window_class[j])] * tdi_period_ns / 2
                      and abs(ac_pos_px[i] - ac_pos_px[j]) < WINDOW_AC / 2)
            if higher and inside and (best < 0 or (g_onboard[j], transit_id[j]) < (g_onboard[best], transit_id[best])):
                best = j
        lost[i], blocker[i] = best >= 0, best
    return lost, blocker


def bright_environment(obmt_ns, fov, ccd_row, ac_px, g_mag, bright_g_mag, delta_g_mag, reach_ns, ac_reach_px,
                       saturated):
    """Whether each transit has, in its FoV and row, a transit brighter than ``bright_g_mag`` and at least
    ``delta_g_mag`` brighter than it (a saturated one is brighter than any) within ``reach_ns`` in time and
    ``ac_reach_px`` AC pixels."""
    n = len(obmt_ns)
    out = np.zeros(n, dtype=bool)
    for i in range(n):
        for b in range(n):
            brighter = saturated[b] or (np.isfinite(g_mag[b]) and g_mag[b] < bright_g_mag
                                        and g_mag[i] - g_mag[b] >= delta_g_mag)
            if (b != i and fov[b] == fov[i] and ccd_row[b] == ccd_row[i] and brighter and np.isfinite(g_mag[i])
                    and abs(int(obmt_ns[i]) - int(obmt_ns[b])) <= reach_ns and abs(ac_px[i] - ac_px[b]) <= ac_reach_px):
                out[i] = True
    return out


def blends(obmt_ns, fov, ccd_row, zeta_rad, g_mag, transit_id, scan_rate_arcsec_s, arcsec_rad, al_arcsec, ac_arcsec):
    """Into which detection each one's light goes (-1: its own window): the brightest detection (lower G, then
    lower transit id) of its FoV and row brighter than it within (dAL / al)^2 + (dAC / ac)^2 < 1, followed
    along a chain to one that keeps its window."""
    n = len(obmt_ns)
    into = [-1] * n
    for i in range(n):
        for j in range(n):
            if j == i or fov[j] != fov[i] or ccd_row[j] != ccd_row[i]:
                continue
            d_al = (int(obmt_ns[i]) - int(obmt_ns[j])) * 1e-9 * scan_rate_arcsec_s
            d_ac = (zeta_rad[i] - zeta_rad[j]) / arcsec_rad
            if ((g_mag[j], transit_id[j]) < (g_mag[i], transit_id[i]) and (d_al / al_arcsec) ** 2
                    + (d_ac / ac_arcsec) ** 2 < 1.0 and (into[i] < 0 or (g_mag[j], transit_id[j])
                                                         < (g_mag[into[i]], transit_id[into[i]]))):
                into[i] = j
    for i in range(n):
        while into[i] >= 0 and into[into[i]] >= 0:
            into[i] = into[into[i]]
    return np.array(into, dtype=np.int64)


def truncations(obmt_ns, window_ns, ccd_row, ac_pos_px, window_class, g_onboard, transit_id, has_window,
                tdi_period_ns):
    """(samples not read at the start, at the end, the highest-priority window faced or -1) of every window:
    sample k of a window (centre w, n samples) lies at w + (k - (n - 1) / 2) tdi; a window of higher priority
    on the row (centre w', n' samples, both with a window, AC centres less than half a window apart, this one's
    centre at least n' / 2 tdi from its crossing) that crossed first takes the samples from the start up to the
    last one before w' + n' / 2 tdi; one that crossed after, those from the first one at or after w' - n' / 2
    tdi to the end. Exact fractions, one sample at a time."""
    from fractions import Fraction

    n = len(obmt_ns)
    start, end, faces = np.zeros(n, np.int64), np.zeros(n, np.int64), np.full(n, -1, np.int64)
    for i in range(n):
        ni = WINDOW_AL[int(window_class[i])]
        for j in range(n):
            nj = WINDOW_AL[int(window_class[j])]
            if (j == i or ccd_row[j] != ccd_row[i] or not has_window[i] or not has_window[j]
                    or not (g_onboard[j], transit_id[j]) < (g_onboard[i], transit_id[i])
                    or abs(ac_pos_px[i] - ac_pos_px[j]) >= WINDOW_AC / 2
                    or abs(int(obmt_ns[i]) - int(obmt_ns[j])) < Fraction(nj * tdi_period_ns, 2)):
                continue
            centres = [int(window_ns[i]) + Fraction((2 * k - ni + 1) * tdi_period_ns, 2) for k in range(ni)]
            if int(obmt_ns[j]) < int(obmt_ns[i]):
                stop = int(window_ns[j]) + Fraction(nj * tdi_period_ns, 2)
                lost = sum(1 for c in centres if c < stop)  # the centres rise: the first ones
                start[i] = max(start[i], lost)
            else:
                begin = int(window_ns[j]) - Fraction(nj * tdi_period_ns, 2)
                lost = sum(1 for c in centres if c >= begin)
                end[i] = max(end[i], lost)
            if lost and (faces[i] < 0 or (g_onboard[j], transit_id[j]) < (g_onboard[faces[i]], transit_id[faces[i]])):
                faces[i] = j
    return start, end, faces
