"""Calibrate the population sky's unconfirmed parameters against the confirmed counts, once, then freeze
(docs/sky-sources.md section 8 item 6; results in docs/sky-calibration.md, frozen in gaiasim/sim/galaxy.py).

Evaluates the model's *expected* counts (galaxy.line_of_sight on the rows' own directions; no star is
materialised) over a grid of the [U] parameters and their published alternatives:

* shape (one line-of-sight pass each): the dust (Li+2018's disc at A0 per kpc 0.7-1.0, docs/sky-sources.md
  3.2 [U/C-sec], or Amores & Lepine 2005's Model A, 3.17 [C-impl]),
  the old thin disc's scale lengths (Robin+2003 2.53/1.32 kpc, GUMS DR3 2.011/1.310 [C-impl]), the thick
  disc's scale length (2.5 Robin+2003, 2.919 GUMS DR3, 3.6 Juric+2008) and height (0.8, 0.795, 0.9 kpc),
  the bulge/bar law (galaxy.BULGE_MODELS: Robin+2003, GUMS DR3, Robin+2012 B);
* linear (every count is linear in each component's weight, so these cost nothing): the halo/thin ratio
  (0.0051 or 0.001, sky-sources 2.2), the bulge's number scale (0.2-2), the giants' share (0.3-1.2 %, with
  ``--giants``: the fourth run), and the thin disc's local density, solved so that the sky holds EDR3's
  1,806,254,432 sources with G.

Each combination is scored on the confirmed rows of ``python -m gaiasim.bench --only sky``
(gaiasim/validate/sky_fidelity.py), with their tolerances: the sky total (+-5 %), the DR2 sparse and dense
fields (+-25 %), Sgr-I and the peak pixel (within x2), the stars within 100 pc (+-15 %), Bahcall-Soneira N(<G)
at |b| >= 20 for the 6 limits Tycho-2 does not supersede (+-25 %; G < 12 was scored up to the third run), Tycho-2's
densities at |b| 0, 30, 90 and its entries (+-25 %, the fourth run on); a combination whose local density
leaves GCNS's 0.072-0.079 pc^-3 +-15 % is discarded. Best: Gaia's own counts passing (GAIA_ROWS), then most
rows passing, then the smallest sum of squared residuals in units of tolerance.
Bahcall-Soneira is read two ways: V = G + 0.3 (the bench's [U] offset) and, per star, V = G - (G - V)(BP-RP)
with the Riello+2021 polynomial (see docs/sky-calibration.md), reported side by side.

    python -m gaiasim.sim.sky_calibration   # 168 passes; prints the tables of docs/sky-calibration.md
    python -m gaiasim.sim.sky_calibration --dust al05   # the third run's 21 passes, ~2 min
    python -m gaiasim.sim.sky_calibration --dust al05 --giants   # the fourth run's, ~4 min
"""

from __future__ import annotations

import argparse
import functools
import itertools
import math
import time

import numpy as np

from gaiasim.sim import galaxy as g
from gaiasim.sim import sky
from gaiasim.validate import sky_fidelity as sf

# --- The grid (docs/sky-sources.md sections 2.1, 2.2, 3.2) -------------------------------------------------------

#: The dust: Li+2018's exponential disc at each normalisation a0 (mag/kpc), or Amores & Lepine 2005's Model A,
#: "al05" (its own normalisation; galaxy.AL05_*, docs/sky-sources.md 3.17).
DUST_A0_PER_KPC = (0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.0)
DUSTS = (*DUST_A0_PER_KPC, "al05")
THIN_HR_OLD_KPC = {"robin2003": (2.53, 1.32), "gums_dr3": (2.011, 1.310)}
THICK_HR_KPC = (2.5, 2.919, 3.6)
THICK_HZ_KPC = (0.8, 0.795, 0.9)
BULGES = tuple(g.BULGE_MODELS)
HALO_TO_THIN = (0.0051, 0.001)
BULGE_SCALES = tuple(np.round(np.arange(0.2, 2.0001, 0.025), 3))
#: Giants per star (galaxy.GIANT_FRACTION [U]; the fourth run's linear parameter): 0.3-1.2 %.
GIANT_FRACTIONS = tuple(np.round(np.arange(0.003, 0.01201, 0.0005), 4))

# --- Targets (the bench's rows, gaiasim/validate/sky_fidelity.py) ------------------------------------------------

#: Resolved companions per primary at scale 1, measured by the bench on every 997th pixel [D].
COMPANIONS = 1.0093
LOCAL_BAND = (0.85 * 0.072, 1.15 * 0.079)  # GCNS 0.072-0.079 pc^-3 +-15 % (sky-sources 1.16 [D])
_DENSE, _SPARSE, _SGR, _BAADE = (f[0] for f in sf._fields()[:4])
#: Guards besides the rows: the unit tests' bounds on the bulge windows (tests/unit/test_galaxy.py: Sgr-I and
#: Baade's window within 4.6e6 / 2 .. x2 (/ 2.5 in the first calibration), the peak above 4.6e6 / 2), which a
#: calibration must not weaken.
#: A row or a guard counts as kept only with MIN_MARGIN of its band to spare: the bench's figures differ from
#: these expected counts by a few per cent (materialised stars, merged pairs, its own pixel samples).
WINDOW_BAND = (sf.SGR_I_DENSITY / 2.0, sf.SGR_I_DENSITY * 2.0)
MIN_MARGIN = 0.05

# --- Directions ------------------------------------------------------------------------------------------------

_LON, _LAT = g.pixel_lb(np.arange(sky.N_PIXELS))
_L, _B = np.degrees(_LON), np.degrees(_LAT)
SAMPLE = {
    "total": np.arange(18, sky.N_PIXELS, 37),  # the sky total: every 37th pixel (0.2 % from the full sum)
    "local": np.arange(48, sky.N_PIXELS, 97),  # stars within 100 pc, as sky_fidelity._local_row
    "peak": np.flatnonzero((np.abs((_L + 180.0) % 360.0 - 180.0) < 10.0) & (np.abs(_B) < 10.0)),
    "high": (lambda p: p[np.abs(_B[p]) >= sf.BS_MIN_ABS_B_DEG])(np.arange(11, sky.N_PIXELS, 197)),
}
for _name, _l0, _b0, _r, *_ in sf._fields()[:4]:
    SAMPLE[_name] = np.flatnonzero(sf._in_cap(_L, _B, _l0, _b0, _r))
for _b0, (_lo, _hi) in sf.TYCHO2_BANDS.items():  # the Tycho-2 bands: every 3rd pixel (the bench takes all)
    SAMPLE[f"tycho{_b0:g}"] = np.flatnonzero((np.abs(_B) >= _lo) & (np.abs(_B) <= _hi))[1::3]


@functools.cache
def limit_tables(mode: str) -> tuple[np.ndarray, ...]:
    """Detected-fraction tables (as galaxy.tables()["detected"]) of the stars brighter than each
    Bahcall-Soneira limit: ``"g"``: G < limit; ``"v"``: V < limit + 0.3 with V from each star's observed
    BP-RP (its sequence's intrinsic colour reddened by the EDR3 law)."""
    t = g.tables()
    if mode == "g":
        return tuple(g.detected_tables(t["lf"], t["ridge"], lambda mag, _, lim=lim: mag < lim)
                     for lim in sf.BS_G_LIMITS)
    return tuple(g.detected_tables(t["lf"], t["ridge"],
                                   lambda mag, x, lim=lim: sf.v_mag(mag, x) < lim + sf.BS_V_MINUS_G)
                 for lim in sf.BS_G_LIMITS)


def _per_component(pixels: np.ndarray, params: np.ndarray, detected: np.ndarray | None = None) -> np.ndarray:
    """(pixels, components) expected detected stars of each component at unit local densities of the groups
    (and the frozen giants' share: :func:`component_weights` rescales it)."""
    counts, _ = g.line_of_sight(_LON[pixels], _LAT[pixels], params, np.ones(len(g.GROUPS)), detected)
    return counts.sum(axis=2)


def shape_metrics(params: np.ndarray) -> dict[str, np.ndarray]:
    """Each row's figure per component at unit local densities (linear in the densities and the giants' share)."""
    per_deg2 = COMPANIONS / sky.PIXEL_DEG2
    m = {"total": _per_component(SAMPLE["total"], params).sum(0) * sky.N_PIXELS / len(SAMPLE["total"]) * COMPANIONS}
    for name in (_DENSE, _SPARSE, _SGR, _BAADE):
        m[name] = _per_component(SAMPLE[name], params).mean(0) * per_deg2
    m["peak"] = _per_component(SAMPLE["peak"], params) * per_deg2  # (pixels, components): the max after the sum
    counts, _ = g.line_of_sight(_LON[SAMPLE["local"]], _LAT[SAMPLE["local"]], params, np.ones(len(g.GROUPS)))
    e = g.DIST_EDGES_PC
    inside = np.clip((sf.GCNS_RADIUS_PC**3 - e[:-1] ** 3) / (e[1:] ** 3 - e[:-1] ** 3), 0.0, 1.0)
    m["gcns"] = counts.sum(axis=0) @ inside * sky.N_PIXELS / len(SAMPLE["local"])
    for mode in ("g", "v"):
        m[f"bs_{mode}"] = np.array([_per_component(SAMPLE["high"], params, d).mean(0) * per_deg2
                                    for d in limit_tables(mode)])
    tycho = sf._tycho2_table()
    m["tycho"] = np.array([_per_component(SAMPLE[f"tycho{b0:g}"], params, tycho).mean(0) * per_deg2
                           for b0, _ in sf.TYCHO2_DENSITY_BY_ABS_B]
                          + [_per_component(SAMPLE["total"], params, tycho).sum(0) * COMPANIONS * sky.N_PIXELS
                             / len(SAMPLE["total"])])
    return m


#: The group (an index of galaxy.GROUPS) of each component.
_GROUP_OF = np.array([g.GROUPS.index(group) for group, _ in g.COMPONENTS])


@functools.cache
def _kind_shares(giants: float) -> np.ndarray:
    """Each component's share at ``giants`` giants per star over its share in the tables (the frozen value)."""
    out = np.empty(len(g.COMPONENTS))
    for c, (group, kind) in enumerate(g.COMPONENTS):
        frozen, wanted = g.giant_fraction(group), g.giant_fraction(group, giants)
        out[c] = (1.0 - wanted) / (1.0 - frozen) if kind == 0 else (wanted / frozen if frozen > 0 else 0.0)
    return out


def component_weights(local: np.ndarray, giants: float = g.GIANT_FRACTION) -> np.ndarray:
    """The weight of each component (galaxy.COMPONENTS) in the metrics: its group's local density, its kind's
    share rescaled from the frozen giants' share (the tables') to ``giants``."""
    return local[_GROUP_OF] * _kind_shares(float(giants))


def references() -> dict[str, float | np.ndarray]:
    fields = {f[0]: f[4] for f in sf._fields()}
    high = SAMPLE["high"]
    return {"total": float(sf.EDR3_SOURCES_WITH_G), _DENSE: fields[_DENSE], _SPARSE: fields[_SPARSE],
            _SGR: sf.SGR_I_DENSITY, "peak": sf.SGR_I_DENSITY, "gcns": sf.GCNS_WITHIN_100PC,
            "bs": np.array([sf.bahcall_soneira(_L[high], _B[high], lim + sf.BS_V_MINUS_G).mean()
                            for lim in sf.BS_G_LIMITS]),
            "tycho": np.array([d for _, d in sf.TYCHO2_DENSITY_BY_ABS_B] + [sf.TYCHO2_ENTRIES])}


#: (row, reference key, tolerance: relative, or a factor for the windows): the bench's scored rows. Bahcall-Soneira
#: where Tycho-2 does not supersede it (V > sf.BS_SUPERSEDED_TO_V, the fourth run; the third scored G < 12 too).
ROWS = ([("total", "total", 0.05), ("sparse", _SPARSE, 0.25), ("dense", _DENSE, 0.25), ("Sgr-I", _SGR, "x2"),
         ("peak", "peak", "x2"), ("<100 pc", "gcns", 0.15)]
        + [(f"BS G<{lim:g}", ("bs", i), 0.25) for i, lim in enumerate(sf.BS_G_LIMITS)
           if lim + sf.BS_V_MINUS_G > sf.BS_SUPERSEDED_TO_V]
        + [(f"Tycho-2 {name}", ("tycho", i), sf.TOL_TYCHO2)
           for i, name in enumerate((*(f"|b| {b0:g}" for b0, _ in sf.TYCHO2_DENSITY_BY_ABS_B), "sky"))])


def evaluate(m: dict, ref: dict, w: np.ndarray, bs_mode: str) -> dict:
    """Rows (value, ratio, pass with MIN_MARGIN to spare, residual in tolerances) at the component weights ``w``
    (:func:`component_weights`)."""
    values = {"total": m["total"] @ w, _DENSE: m[_DENSE] @ w, _SPARSE: m[_SPARSE] @ w,
              _SGR: m[_SGR] @ w, "peak": float((m["peak"] @ w).max()), "gcns": m["gcns"] @ w,
              "bs": m[f"bs_{bs_mode}"] @ w, "tycho": m["tycho"] @ w}
    out = {}
    for row, key, tol in ROWS:
        value, reference = (values[key[0]][key[1]], ref[key[0]][key[1]]) if isinstance(key, tuple) \
            else (values[key], ref[key])
        ratio = value / reference
        resid = math.log(ratio) / math.log(2.0) if tol == "x2" else (ratio - 1.0) / tol
        out[row] = (float(value), float(ratio), bool(abs(resid) <= 1.0 - MIN_MARGIN), float(resid))
    return out


def guarded(m: dict, local: np.ndarray, w: np.ndarray) -> bool:
    """The guards, each with MIN_MARGIN to spare: GCNS's local density band (``local``: the groups' densities) and
    the unit tests' bounds on the bulge windows (``w``: the component weights)."""
    lo, hi = 1.0 + MIN_MARGIN, 1.0 - MIN_MARGIN
    windows = (m[_SGR] @ w, m[_BAADE] @ w)
    return (LOCAL_BAND[0] * lo <= local[:-1].sum() <= LOCAL_BAND[1] * hi
            and all(WINDOW_BAND[0] * lo <= x <= WINDOW_BAND[1] * hi for x in windows)
            and float((m["peak"] @ w).max()) >= sf.SGR_I_DENSITY / 2.0 * lo)


def solve(m: dict, halo: float, bulge: str, scale: float, giants: float = g.GIANT_FRACTION) -> np.ndarray | None:
    """Local densities of the groups with the thin disc's solved for the sky total; None if it comes out
    non-positive."""
    unit = component_weights(g.local_densities(thin=1.0, halo_to_thin=halo, bulge=bulge, bulge_scale=scale), giants)
    bulge_part = m["total"][-2:] @ unit[-2:]
    thin = (sf.EDR3_SOURCES_WITH_G - bulge_part) / (m["total"][:-2] @ unit[:-2])
    return None if thin <= 0 else g.local_densities(thin=thin, halo_to_thin=halo, bulge=bulge, bulge_scale=scale)


def dust_kwargs(dust: float | str) -> dict:
    """galaxy.model_params's arguments for one entry of DUSTS."""
    return {"dust": dust} if isinstance(dust, str) else {"dust": "li2018", "dust_a0": dust}


def scan(bs_modes=("g", "v"), dusts=DUSTS, giant_grid=(g.GIANT_FRACTION,)) -> list[dict]:
    """Every combination of the grid (the thin disc's density solved for the sky total), with its rows and
    whether it keeps the guards."""
    ref = references()
    discs = {}
    t0 = time.time()
    for dust, (thin_name, hr), thick_hr, thick_hz in itertools.product(
            dusts, THIN_HR_OLD_KPC.items(), THICK_HR_KPC, THICK_HZ_KPC):
        p = g.model_params(thin_hr_old=hr, thick_hr=thick_hr, thick_hz=thick_hz, **dust_kwargs(dust))
        discs[(dust, thin_name, thick_hr, thick_hz)] = shape_metrics(p)
    bulges = {(dust, b): shape_metrics(g.model_params(bulge=b, **dust_kwargs(dust)))
              for dust, b in itertools.product(dusts, BULGES)}
    print(f"# {len(discs) + len(bulges)} line-of-sight passes in {time.time() - t0:.0f} s")
    results = []
    for (dust, thin_name, thick_hr, thick_hz), md in discs.items():
        for bulge in BULGES:
            mb = bulges[(dust, bulge)]
            m = {k: np.concatenate([md[k][..., :-2], mb[k][..., -2:]], axis=-1) for k in md}  # discs + this bulge
            for halo, scale, giants, mode in itertools.product(HALO_TO_THIN, BULGE_SCALES, giant_grid, bs_modes):
                local = solve(m, halo, bulge, scale, giants)
                if local is None:
                    continue
                w = component_weights(local, giants)
                rows = evaluate(m, ref, w, mode)
                results.append({"dust": dust, "thin_hr": thin_name, "thick_hr": thick_hr, "thick_hz": thick_hz,
                                "bulge": bulge, "bulge_scale": float(scale), "halo": halo, "giants": giants,
                                "bs_mode": mode, "thin_local": float(local[:-3].sum()),
                                "local_density": float(local[:-1].sum()),
                                "windows": (float(m[_SGR] @ w), float(m[_BAADE] @ w)),
                                "guarded": guarded(m, local, w), "rows": rows,
                                "passes": sum(r[2] for r in rows.values()),
                                "chi2": sum(r[3] ** 2 for r in rows.values())})
    return results


#: The values before this calibration: those frozen by the third one (2026-12-07, the metal-poor main sequence), now
#: with the thin disc resolved into its age bins and the early B dwarfs (the fourth run, 2026-12-08).
BEFORE = dict(dust="al05", thin_hr="robin2003", thick_hr=2.919, thick_hz=0.9, bulge="robin2003", bulge_scale=0.2,
              halo=0.001, giants=0.004)
#: The rows that Gaia measured itself (EDR3's total, DR2's sparse and dense fields, GCNS): a combination must
#: pass them. The Bahcall-Soneira rows are a 1980 model read through a V -> G offset [U], Sgr-I a press figure
#: [C-sec] and the peak a bound: they are counted, not kept.
GAIA_ROWS = ("total", "sparse", "dense", "<100 pc")


def pick(results: list[dict], keep: tuple[str, ...] = (), guards: bool = True, **where) -> dict | None:
    """The best combination: the guards kept (``guards``), every row of ``keep`` passing, then the most
    rows passing, then the smallest chi2 (squared residuals in units of tolerance)."""
    pool = [r for r in results if (r["guarded"] or not guards) and all(r["rows"][k][2] for k in keep)
            and all(r[k] == v for k, v in where.items())]
    return min(pool, key=lambda r: (-r["passes"], r["chi2"])) if pool else None


def describe(r: dict | None) -> str:
    if r is None:
        return "none"
    dust = r["dust"] if isinstance(r["dust"], str) else f"{r['dust']:.2f}"
    head = (f"dust {dust}, thin hR {r['thin_hr']}, thick hR {r['thick_hr']:g} hz {r['thick_hz']:g}, "
            f"bulge {r['bulge']} x{r['bulge_scale']:g}, halo {r['halo']:g}, giants {r['giants']:g}, BS {r['bs_mode']}: "
            f"thin {r['thin_local']:.4f} (local {r['local_density']:.4f}) pc^-3, Baade {r['windows'][1]:.3g}, "
            f"{r['passes']}/{len(ROWS)} pass{'' if r['guarded'] else ', GUARDS BROKEN'}, chi2 {r['chi2']:.2f}")
    rows = "; ".join(f"{k} {v[0]:.4g} ({v[1]:.3f}{'' if v[2] else ' FAIL'})" for k, v in r["rows"].items())
    return f"{head}\n    {rows}"


def crowding_diagnostic(chosen: dict, cap: float) -> str:
    """What the chosen model's rows become if the sky total (a catalogue count) cannot hold more than ``cap``
    sources deg^-2 in any pixel (the crowding of docs/sky-sources.md 1.13/1.25, not modelled: phase 2): the
    thin disc's density re-solved for the capped total. A diagnostic, not used by the choice."""
    p = g.model_params(thin_hr_old=THIN_HR_OLD_KPC[chosen["thin_hr"]], thick_hr=chosen["thick_hr"],
                       thick_hz=chosen["thick_hz"], bulge=chosen["bulge"], **dust_kwargs(chosen["dust"]))
    m = shape_metrics(p)
    pix = _per_component(SAMPLE["total"], p) * COMPANIONS  # (pixels, components) at unit densities
    per_pixel_cap = cap * sky.PIXEL_DEG2

    def local_of(thin: float) -> np.ndarray:
        return g.local_densities(thin=thin, halo_to_thin=chosen["halo"], bulge=chosen["bulge"],
                                 bulge_scale=chosen["bulge_scale"])

    def weights(thin: float) -> np.ndarray:
        return component_weights(local_of(thin), chosen["giants"])

    def capped_total(thin: float) -> float:
        return float(np.minimum(pix @ weights(thin), per_pixel_cap).sum()) * sky.N_PIXELS / len(SAMPLE["total"])

    lo, hi = 0.0, 1.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if capped_total(mid) < sf.EDR3_SOURCES_WITH_G else (lo, mid)
    local = local_of(lo)
    above = float(np.clip(pix @ weights(chosen["thin_local"]) - per_pixel_cap, 0.0, None).sum()) \
        * sky.N_PIXELS / len(SAMPLE["total"])
    rows = evaluate(m, references(), weights(lo), "g")
    rows.pop("total")
    return (f"cap {cap:.3g} deg^-2: {above / 1e6:.0f} M of the chosen model's sources lie above it; the total "
            f"re-solved under the cap gives thin {lo:.4f} (local {local[:-1].sum():.4f}) pc^-3:\n    "
            + "; ".join(f"{k} {v[0]:.4g} ({v[1]:.3f}{'' if v[2] else ' FAIL'})" for k, v in rows.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dust", choices=[str(d) for d in DUSTS], action="append",
                        help="scan only these dust entries (repeatable; default all; must include the one of BEFORE)")
    parser.add_argument("--giants", action="store_true",
                        help=f"scan the giants' share over {GIANT_FRACTIONS[0]:g}-{GIANT_FRACTIONS[-1]:g} "
                             "(the fourth run) instead of holding it at the frozen value; use with --dust al05")
    args = parser.parse_args()
    dusts = DUSTS if not args.dust else tuple(d if d == "al05" else float(d) for d in args.dust)
    results = scan(dusts=dusts, giant_grid=GIANT_FRACTIONS if args.giants else (g.GIANT_FRACTION,))
    print(f"# {len(results)} combinations, {sum(r['guarded'] for r in results)} keep the guards")
    before = pick(results, guards=False, bs_mode="g", **{k: v for k, v in BEFORE.items()
                                                          if k != "giants" or args.giants})
    if before is None:
        raise SystemExit(f"--dust must include {BEFORE['dust']}: the values before the calibration use it")
    keep = GAIA_ROWS
    print("\n## Before the calibration")
    print(describe(before))
    print(f"\n## Chosen: the guards, Gaia's own counts ({', '.join(keep)}) passing, then most rows, then least chi2")
    chosen = pick(results, keep, bs_mode="g")
    print(describe(chosen))
    print("\n## The same, per bulge law")
    for b in BULGES:
        print(describe(pick(results, keep, bs_mode="g", bulge=b)))
    print("\n## The same, per dust normalisation")
    for dust in dusts:
        print(describe(pick(results, keep, bs_mode="g", dust=dust)))
    for row in ("Sgr-I", "BS G<17", "BS G<18", "BS G<19", "Tycho-2 |b| 0", "Tycho-2 |b| 90"):
        print(f"\n## Passing {row} as well: with the guards / without them")
        print(describe(pick(results, (*keep, row), bs_mode="g")))
        print(describe(pick(results, (*keep, row), guards=False, bs_mode="g")))
    print("\n## Bahcall-Soneira read per star with Riello+2021's G - V (before / chosen that way)")
    print(describe(pick(results, guards=False, bs_mode="v", **BEFORE)))
    print(describe(pick(results, keep, bs_mode="v")))
    print("\n## Diagnostic (not used): the chosen model with the catalogue's crowding as a density cap")
    for cap in (7.5e5, 1.05e6):
        print(crowding_diagnostic(chosen, cap))


if __name__ == "__main__":
    main()
