"""Plain numpy reference of ``gaiasim.sim.kernels_galaxy.line_of_sight``: the population sky's expected
detected stars per (component, distance bin) and the dust column, written from the named constants of
gaiasim.sim.galaxy (docs/sky.md), vectorised over the distance grid, without the kernels."""

from __future__ import annotations

import numpy as np

from gaiasim.sim import galaxy as g


def _thin_bins(r: np.ndarray, z: np.ndarray) -> list[np.ndarray]:
    """Each thin-disc age bin's density law over its value at the Sun (Einasto; the youngest its own form)."""
    out = []
    for i, eps in enumerate(g.THIN_EPS):
        def law(rr, zz, eps=eps, young=(i == 0)):
            a2 = rr**2 + (zz / eps) ** 2
            if young:
                h1, h2 = g.THIN_HR_YOUNG_KPC
                return np.exp(-a2 / h1**2) - np.exp(-a2 / h2**2)
            h1, h2 = g.THIN_HR_OLD_KPC
            return np.exp(-np.sqrt(0.25 + a2 / h1**2)) - np.exp(-np.sqrt(0.25 + a2 / h2**2))
        out.append(np.where(r <= g.R_DISC_MAX_KPC, law(r, z) / law(np.array(g.R_SUN_KPC), np.array(g.Z_SUN_KPC)), 0.0))
    return out


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


def _bulge(xc: np.ndarray, yc: np.ndarray, z: np.ndarray, name: str) -> np.ndarray:
    """The bulge law ``name`` over its central density (docs/sky.md section 2): boxy radius, Gaussian or
    sech^2 profile, the GUMS bone, the Gaussian cut-off beyond R_c."""
    b = g.BULGE_MODELS[name]
    phi = np.radians(b.angle_deg)
    xb = xc * np.cos(phi) + yc * np.sin(phi)
    yb = -xc * np.sin(phi) + yc * np.cos(phi)
    z0 = b.z0 * (1.0 + b.bone_dz * np.sin(np.abs(xb) / b.bone_x))
    r_perp = ((np.abs(xb) / b.x0) ** b.c_perp + (np.abs(yb) / b.y0) ** b.c_perp) ** (1.0 / b.c_perp)
    rs = (r_perp**b.c_para + (np.abs(z) / z0) ** b.c_para) ** (1.0 / b.c_para)
    law = np.cosh(np.minimum(rs, 300.0)) ** -2.0 if b.profile == "sech2" else np.exp(-0.5 * rs**2)
    rxy = np.hypot(xb, yb)
    return law * np.where(rxy > b.r_cut, np.exp(-0.5 * ((rxy - b.r_cut) / b.sigma_cut) ** 2), 1.0)


def densities(d_kpc: np.ndarray, l_rad: float, b_rad: float, bulge: str = g.BULGE_MODEL) -> np.ndarray:
    """(groups, n) number densities (pc^-3) of the thin disc's age bins, thick disc, halo, bulge (the law
    ``bulge``) at ``d_kpc``."""
    x = d_kpc * np.cos(b_rad) * np.cos(l_rad)
    y = d_kpc * np.cos(b_rad) * np.sin(l_rad)
    z = d_kpc * np.sin(b_rad) + g.Z_SUN_KPC
    xc = g.R_SUN_KPC - x
    r = np.hypot(xc, y)
    local = g.local_densities(bulge=bulge)
    n = len(g.THIN_EPS)
    return np.stack([*(local[i] * law for i, law in enumerate(_thin_bins(r, z))), local[n] * _thick(r, z),
                     local[n + 1] * _halo(r, z), local[n + 2] * _bulge(xc, y, z, bulge)])


def _al05_av_per_kpc(s: np.ndarray, l_rad: float, b_rad: float) -> np.ndarray:
    """Amores & Lepine 2005 Model A along the line of sight, as their code writes it (galaxy.AL05_*)."""
    x, y, z = s * np.cos(b_rad) * np.cos(l_rad), s * np.cos(b_rad) * np.sin(l_rad), s * np.sin(b_rad)
    r = np.maximum(np.hypot(g.AL05_R0_KPC - x, y), 1e-9)
    z_h2 = g.AL05_Z_H2[0] * np.exp(g.AL05_Z_H2[1] * r)
    (a_hi, l_hi, hole_hi), (a_h2, l_h2, hole_h2), (a_gc, w_gc) = g.AL05_HI, g.AL05_H2, g.AL05_GC
    n_hi = a_hi * np.exp(-r / l_hi - (hole_hi / r) ** 2)
    n_h2 = a_h2 * np.exp(-r / l_h2 - (hole_h2 / r) ** 2) + a_gc * np.exp(-(r**2) / w_gc)
    r_in, z_in, r_break, p_in, p_out = g.AL05_METALS
    ratio = g.AL05_R0_KPC / r
    metals = np.where(r <= r_in, z_in, np.where(r <= r_break, ratio**p_in, ratio**p_out))
    dz = z - g.AL05_Z_SHIFT_KPC
    gas = (g.AL05_GAMMA[0] * n_hi * metals * np.exp(-0.5 * (dz / (g.AL05_Z_HI_RATIO * z_h2)) ** 2)
           + g.AL05_GAMMA[1] * n_h2 * np.exp(-0.5 * (dz / z_h2) ** 2))
    tune = g.AL05_TUNE[2] if g.AL05_TUNE[0] <= np.degrees(l_rad) % 360.0 <= g.AL05_TUNE[1] else 1.0
    return g.AL05_AV_PER_GAS * gas * tune


def a0_column(d_kpc: np.ndarray, l_rad: float, b_rad: float, dust: str = g.DUST_MODEL) -> np.ndarray:
    """A0 from the start of the distance grid (the model has no dust closer) to each distance, by a fine
    trapezoid rule (independent of the kernel's grid)."""
    out = []
    for d in np.atleast_1d(d_kpc):
        s = np.linspace(g.DIST_EDGES_PC[0] * 1e-3, d, 4001)
        if dust == "al05":
            out.append(np.trapezoid(_al05_av_per_kpc(s, l_rad, b_rad), s))
            continue
        x, y = s * np.cos(b_rad) * np.cos(l_rad), s * np.cos(b_rad) * np.sin(l_rad)
        r = np.hypot(g.R_SUN_KPC - x, y)
        rho = np.exp(-(r - g.R_SUN_KPC) / g.DUST_SCALE_LENGTH_KPC
                     - np.abs(s * np.sin(b_rad) + g.DUST_SUN_ABOVE_KPC) / g.DUST_SCALE_HEIGHT_KPC)
        rho = np.where(r <= g.R_DISC_MAX_KPC, rho, 0.0)
        out.append(g.DUST_A0_PER_KPC * np.trapezoid(rho, s))
    return np.array(out)


def line_of_sight(l_rad: float, b_rad: float, a0_edges: np.ndarray, bulge: str = g.BULGE_MODEL) -> np.ndarray:
    """(components, bins) expected detected stars, given the A0 at the bin edges."""
    e = g.DIST_EDGES_PC
    centre = np.sqrt(e[:-1] * e[1:])
    a0c = a0_edges[:-1] + (a0_edges[1:] - a0_edges[:-1]) * (centre - e[:-1]) / (e[1:] - e[:-1])
    rho = densities(centre * 1e-3, l_rad, b_rad, bulge)
    volume = g.PIXEL_SR * (e[1:] ** 3 - e[:-1] ** 3) / 3.0
    det = g.tables()["detected"]
    out = np.empty((len(g.COMPONENTS), len(centre)))
    for c in range(len(g.COMPONENTS)):
        frac = np.array([np.interp(a, g.A0_GRID, det[c, k]) for k, a in enumerate(a0c)])
        out[c] = rho[c // 2] * volume * frac
    return out


def extinction_ratio(coef: tuple, x: np.ndarray, a0: np.ndarray) -> np.ndarray:
    """A_X / A0 of the EDR3 main-sequence law (docs/sky.md section 4), inputs clamped to its calibrated range."""
    x = np.minimum(np.maximum(x, g.K_X_RANGE[0]), g.K_X_RANGE[1])
    a = np.minimum(np.maximum(a0, 0.0), g.K_A0_MAX)
    terms = (np.ones_like(x), x, x**2, x**3, a, a**2, a**3, x * a, a * x**2, x * a**2)
    return sum(c * t for c, t in zip(coef, terms, strict=True))


def photometry(abs_g: np.ndarray, distance_pc: np.ndarray, a0: np.ndarray,
               bp_rp0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(G, BP-RP) of single stars from their per-star truth (truth/source_physics): G = M_G + mu + k_G A0,
    BP-RP = X + (k_BP - k_RP) A0, X the intrinsic colour (docs/sky.md section 4)."""
    mu = 5.0 * np.log10(distance_pc / 10.0)
    return (abs_g + mu + extinction_ratio(g.K_G, bp_rp0, a0) * a0,
            bp_rp0 + (extinction_ratio(g.K_BP, bp_rp0, a0) - extinction_ratio(g.K_RP, bp_rp0, a0)) * a0)
