"""Plain numpy reference of ``gaiasim.sim.kernels_galaxy.line_of_sight``: the population sky's expected
detected stars per (component, distance bin) and the dust column, written from the named constants of
gaiasim.sim.galaxy (docs/sky.md), vectorised over the distance grid, without the kernels."""

from __future__ import annotations

import numpy as np

from gaiasim.sim import galaxy as g


def _thin(r: np.ndarray, z: np.ndarray) -> np.ndarray:
    w = np.array(g.THIN_RHO0) / np.sum(g.THIN_RHO0)
    out = np.zeros_like(r)
    for i, (wi, eps) in enumerate(zip(w, g.THIN_EPS, strict=True)):
        def law(rr, zz, eps=eps, young=(i == 0)):
            a2 = rr**2 + (zz / eps) ** 2
            if young:
                h1, h2 = g.THIN_HR_YOUNG_KPC
                return np.exp(-a2 / h1**2) - np.exp(-a2 / h2**2)
            h1, h2 = g.THIN_HR_OLD_KPC
            return np.exp(-np.sqrt(0.25 + a2 / h1**2)) - np.exp(-np.sqrt(0.25 + a2 / h2**2))
        out += wi * law(r, z) / law(np.array(g.R_SUN_KPC), np.array(g.Z_SUN_KPC))
    return np.where(r <= g.R_DISC_MAX_KPC, out, 0.0)


def _thick(r: np.ndarray, z: np.ndarray) -> np.ndarray:
    hz, xl = g.THICK_HZ_KPC, g.THICK_XL_KPC

    def law(rr, zz):
        az = np.abs(zz)
        vertical = np.where(az <= xl, 1 - zz**2 / (xl * (2 * hz + xl)), np.exp((xl - az) / hz) / (1 + xl / (2 * hz)))
        return np.exp(-(rr - g.R_SUN_KPC) / g.THICK_HR_KPC) * vertical
    return np.where(r <= g.R_DISC_MAX_KPC, law(r, z) / law(g.R_SUN_KPC, g.Z_SUN_KPC), 0.0)


def _halo(r: np.ndarray, z: np.ndarray) -> np.ndarray:
    def law(rr, zz):
        return (np.maximum(np.sqrt(rr**2 + (zz / g.HALO_EPS) ** 2), g.HALO_CORE_KPC) / g.R_SUN_KPC) ** -g.HALO_POWER
    return law(r, z) / law(g.R_SUN_KPC, g.Z_SUN_KPC)


def _bulge(xc: np.ndarray, yc: np.ndarray, z: np.ndarray) -> np.ndarray:
    phi = np.radians(g.BULGE_ANGLE_DEG)
    xb = xc * np.cos(phi) + yc * np.sin(phi)
    yb = -xc * np.sin(phi) + yc * np.cos(phi)
    rs2 = np.sqrt(((xb / g.BULGE_X0_KPC) ** 2 + (yb / g.BULGE_Y0_KPC) ** 2) ** 2 + (z / g.BULGE_Z0_KPC) ** 4)
    rxy = np.hypot(xb, yb)
    cut = np.where(rxy > g.BULGE_RC_KPC, np.exp(-2.0 * (rxy - g.BULGE_RC_KPC) ** 2), 1.0)
    return np.exp(-0.5 * rs2) * cut


def densities(d_kpc: np.ndarray, l_rad: float, b_rad: float) -> np.ndarray:
    """(4, n) number densities (pc^-3) of thin, thick, halo, bulge at distances ``d_kpc``."""
    x = d_kpc * np.cos(b_rad) * np.cos(l_rad)
    y = d_kpc * np.cos(b_rad) * np.sin(l_rad)
    z = d_kpc * np.sin(b_rad) + g.Z_SUN_KPC
    xc = g.R_SUN_KPC - x
    r = np.hypot(xc, y)
    local = g.local_densities()
    return np.stack([local[0] * _thin(r, z), local[1] * _thick(r, z), local[2] * _halo(r, z),
                     local[3] * _bulge(xc, y, z)])


def a0_column(d_kpc: np.ndarray, l_rad: float, b_rad: float) -> np.ndarray:
    """A0 from the start of the distance grid (the model has no dust closer) to each distance, by a fine
    trapezoid rule (independent of the kernel's grid)."""
    out = []
    for d in np.atleast_1d(d_kpc):
        s = np.linspace(g.DIST_EDGES_PC[0] * 1e-3, d, 4001)
        x, y = s * np.cos(b_rad) * np.cos(l_rad), s * np.cos(b_rad) * np.sin(l_rad)
        r = np.hypot(g.R_SUN_KPC - x, y)
        rho = np.exp(-(r - g.R_SUN_KPC) / g.DUST_SCALE_LENGTH_KPC
                     - np.abs(s * np.sin(b_rad) + g.DUST_SUN_ABOVE_KPC) / g.DUST_SCALE_HEIGHT_KPC)
        rho = np.where(r <= g.R_DISC_MAX_KPC, rho, 0.0)
        out.append(g.DUST_A0_PER_KPC * np.trapezoid(rho, s))
    return np.array(out)


def line_of_sight(l_rad: float, b_rad: float, a0_edges: np.ndarray) -> np.ndarray:
    """(components, bins) expected detected stars, given the A0 at the bin edges."""
    e = g.DIST_EDGES_PC
    centre = np.sqrt(e[:-1] * e[1:])
    a0c = a0_edges[:-1] + (a0_edges[1:] - a0_edges[:-1]) * (centre - e[:-1]) / (e[1:] - e[:-1])
    rho = densities(centre * 1e-3, l_rad, b_rad)
    volume = g.PIXEL_SR * (e[1:] ** 3 - e[:-1] ** 3) / 3.0
    det = g.tables()["detected"]
    out = np.empty((len(g.COMPONENTS), len(centre)))
    for c in range(len(g.COMPONENTS)):
        frac = np.array([np.interp(a, g.A0_GRID, det[c, k]) for k, a in enumerate(a0c)])
        out[c] = rho[c // 2] * volume * frac
    return out
