"""Plain-Python oracle of the transients' light curves and detectability (gaiasim.sim.transients): one event as a
dict (a TRUTH_TRANSIENTS row), one time at a time, the formulas of the module docstring written the obvious way.
"""

from __future__ import annotations

import math

NS_PER_DAY = 86_400_000_000_000
DETECTION_LIMIT_G_MAG = 20.7  # docs/facts.md section 2
G_FLOOR_MAG = 8.0
PAIR_GAP_NS = 7_200_000_000_000


def _present(x) -> bool:
    return x is not None and not (isinstance(x, float) and math.isnan(x))


def shape(ev: dict, t_ns: int) -> float:
    """s(tau): the rise (flux as the square of the elapsed fraction), the plateau, the decline."""
    tau = (t_ns - ev["peak_ns"]) / NS_PER_DAY
    rise = ev["rise_d"] or 0.0
    if tau < 0:
        if rise <= 0:
            return 1.0
        return min(max((tau + rise) / rise, 0.0), 1.0) ** 2
    plateau = ev["plateau_d"] if _present(ev["plateau_d"]) else math.inf
    slope = ev["plateau_mag_per_d"] if _present(ev["plateau_mag_per_d"]) else 0.0
    decline = ev["decline_mag_per_d"] if _present(ev["decline_mag_per_d"]) else 0.0
    mags = slope * min(tau, plateau) + (decline * (tau - plateau) if tau > plateau else 0.0)
    return 10.0 ** (-0.4 * mags)


def paczynski(u: float) -> float:
    u = max(u, 1e-9)
    return (u * u + 2.0) / (u * math.sqrt(u * u + 4.0))


def lensing_excess(ev: dict, t_ns: int) -> float:
    tau = (t_ns - ev["peak_ns"]) / NS_PER_DAY
    x = ev["blend_fraction"] * (paczynski(math.hypot(ev["u0"], tau / ev["te_d"])) - 1.0)
    if _present(ev["caustic_ns"]):
        dc = (t_ns - ev["caustic_ns"]) / NS_PER_DAY
        x += ev["blend_fraction"] * ev["caustic_magnification"] * math.exp(-0.5 * (dc / ev["caustic_width_d"]) ** 2)
    return x


def change(ev: dict, t_ns: int) -> float | None:
    """The event's G change of a known source at ``t_ns``, or a new source's G (None: fainter than the limit)."""
    s = shape(ev, t_ns)
    if ev["kind"] == "new_source":
        if s <= 0:
            return None
        g = ev["peak_g_mag"] - 2.5 * math.log10(s)
        return g if g <= DETECTION_LIMIT_G_MAG else None
    peak = ev["delta_g_mag"]
    if ev["kind"] == "fading":
        return -2.5 * math.log10(max(1.0 - (1.0 - 10.0 ** (-0.4 * peak)) * s, 1e-6))
    x = lensing_excess(ev, t_ns) if ev["class"] == "microlensing" else (10.0 ** (-0.4 * peak) - 1.0) * s
    return -2.5 * math.log10(1.0 + max(x, 0.0))


def g_at(ev: dict | None, g_mag: float, t_ns: int) -> float | None:
    """G of a transit of a source of G ``g_mag`` without its event ``ev`` (None: no transit)."""
    if ev is None:
        return g_mag
    active = ev["start_ns"] <= t_ns < ev["end_ns"]
    if ev["kind"] == "new_source":
        return change(ev, t_ns) if active else None
    if not active:
        return g_mag
    g = max(g_mag + change(ev, t_ns), min(g_mag, G_FLOOR_MAG))
    if ev["kind"] == "fading" and g > max(DETECTION_LIMIT_G_MAG, g_mag):
        return None
    return g


def detectable(ev: dict, transits: list[tuple[int, int]], min_dg: float = 1.0, max_g: float = 19.0) -> bool:
    """Is there a FoV 1 / FoV 2 pair of the event's transits ((obmt_ns, fov)) inside the event, at most 2 h apart,
    with |dG| >= min_dg at both (alert_kind new_source: G <= max_g at both)?"""
    inside = [(t, f) for t, f in transits if ev["start_ns"] <= t < ev["end_ns"]]
    for t1, f1 in inside:
        for t2, f2 in inside:
            if f1 != 1 or f2 != 2 or abs(t1 - t2) > PAIR_GAP_NS:
                continue
            values = [change(ev, t) for t in (t1, t2)]
            if any(v is None for v in values):
                continue
            if ev["alert_kind"] == "new_source":
                g = values if ev["kind"] == "new_source" else [ev["g_quiescent_mag"] + v for v in values]
                if max(g) <= max_g:
                    return True
            elif min(abs(v) for v in values) >= min_dg:
                return True
    return False
