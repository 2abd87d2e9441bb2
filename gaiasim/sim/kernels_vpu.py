"""Numba kernels of the on-board VPU's pair rules (:mod:`gaiasim.sim.vpu`): window conflicts, blends and
truncated windows, each judged over the detections within reach of each other on one CCD row.

Every kernel walks the detections in ``order`` (sorted by group, then time); detection ``order[p]`` is
judged against ``order[q]`` for q in [``lo[p]``, ``hi[p]``), its group's detections within reach along
scan (:func:`gaiasim.sim.vpu._reach`). Nothing is allocated per pair: the numpy version built every pair in
reach first (~40 per detection in the bulge's windows) and took ~2.3 us a transit of the full-scale day,
~160 s of its CPU. Priority is ``rank`` (0 the highest, unique), so "the best" of several is unambiguous
and the result does not depend on the order pairs are met. The brute-force references are
tests/naive/vpu.py (``tests/property/test_vpu_properties.py``).
"""

from __future__ import annotations

from gaiasim.sim.jit import jit

#: The rules of :func:`best_in_reach`.
CONFLICT, BLEND = 0, 1


@jit
def best_in_reach(rule, order, lo, hi, rank, t, pos, half_al_ns, params, best):
    """``best[i]``: the highest-priority detection j (rank[j] < rank[i]) in reach that ``rule`` accepts, -1
    when none.

    - :data:`CONFLICT`: j's window holds i's centre, |t_i - t_j| < ``half_al_ns[j]`` and |pos_i - pos_j| <
      ``params[0]`` (``pos``: AC position, px);
    - :data:`BLEND`: i lies inside j's resolution ellipse, (dAL / ``params[0]``)^2 + (dAC / ``params[1]``)^2 < 1
      with dAL = (t_i - t_j) 1e-9 ``params[2]`` (the scan rate, arcsec/s) and dAC = (pos_i - pos_j) /
      ``params[3]`` (``pos``: field angle zeta, rad; ``params[3]``: an arcsec in rad)."""
    for p in range(order.shape[0]):
        i = order[p]
        b = -1
        for q in range(lo[p], hi[p]):
            j = order[q]
            if j == i or rank[j] >= rank[i]:
                continue
            if rule == CONFLICT:
                inside = abs(t[i] - t[j]) < half_al_ns[j] and abs(pos[i] - pos[j]) < params[0]
            else:
                along = (t[i] - t[j]) * 1e-9 * params[2] / params[0]
                across = (pos[i] - pos[j]) / params[3] / params[1]
                inside = along * along + across * across < 1.0
            if inside and (b < 0 or rank[j] < rank[b]):
                b = j
        best[i] = b


@jit
def truncation_cuts(order, lo, hi, t, window_ns, ac_pos, half_al_ns, length, rank, has_window, ac_half_px, tdi_ns,
                    cut, faces):
    """Samples of each window not read out: ``cut[i, 0]`` at its start, ``cut[i, 1]`` at its end (the most
    any higher-priority window facing it takes), and ``faces[i]`` the highest-priority window that takes any,
    -1 when none. j faces i when both keep a window, rank[j] < rank[i], i's centre lies outside j's window
    (|t_i - t_j| >= ``half_al_ns[j]``) and their AC centres are within ``ac_half_px``; sample k of i (of
    ``length[i]``) lies at 2 w_i + (2k - n_i + 1) tdi half-periods, j's window spans 2 w_j -+ n_j tdi
    (integer arithmetic: exact)."""
    for p in range(order.shape[0]):
        i = order[p]
        if not has_window[i]:
            continue
        b = -1
        ni = length[i]
        for q in range(lo[p], hi[p]):
            j = order[q]
            if j == i or not has_window[j] or rank[j] >= rank[i]:
                continue
            if abs(t[i] - t[j]) < half_al_ns[j] or not abs(ac_pos[i] - ac_pos[j]) < ac_half_px:
                continue
            nj = length[j]
            if t[j] < t[i]:  # j crossed first: i loses the samples below j's end, at its start
                first_out = -((-(2 * (window_ns[j] - window_ns[i]) + (nj + ni - 1) * tdi_ns)) // (2 * tdi_ns))
                lost = min(max(first_out, 0), ni)
                side = 0
            else:  # i loses the samples from j's start on, at its end
                first_in = -((-(2 * (window_ns[j] - window_ns[i]) - nj * tdi_ns + (ni - 1) * tdi_ns)) // (2 * tdi_ns))
                lost = ni - min(max(first_in, 0), ni)
                side = 1
            if lost <= 0:
                continue
            if lost > cut[i, side]:
                cut[i, side] = lost
            if b < 0 or rank[j] < rank[b]:
                b = j
        faces[i] = b
