"""The population sky's kernels against their numpy reference (tests/naive/galaxy.py): the line-of-sight
tables, and each star's photometry from its per-star truth (truth/source_physics)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from gaiasim.sim import galaxy, sky
from gaiasim.sim.source_physics import COMPANION_MERGED, COMPANION_PRIMARY, COMPANION_SECONDARY
from tests.naive import galaxy as naive

DIRECTIONS = st.tuples(st.floats(0.0, 360.0), st.floats(-89.9, 89.9))


@settings(max_examples=25, deadline=None)
@given(DIRECTIONS)
def test_the_kernel_equals_the_reference(lb):
    lon, b = np.radians(lb[0]), np.radians(lb[1])
    counts, a0 = galaxy.line_of_sight(np.array([lon]), np.array([b]))
    np.testing.assert_allclose(counts[0], naive.line_of_sight(lon, b, a0[0]), rtol=1e-9, atol=1e-12)
    # the dust column of the kernel's 4-step midpoint rule against a fine trapezoid: 1 % or 1 mmag
    d = galaxy.DIST_EDGES_PC[::8] * 1e-3
    np.testing.assert_allclose(a0[0, ::8], naive.a0_column(d, lon, b), rtol=1e-2, atol=1e-3)


@settings(max_examples=15, deadline=None)
@given(st.sampled_from(galaxy.DUST_MODELS), DIRECTIONS)
def test_each_dust_model_of_the_kernel_equals_the_reference(dust, lb):
    """Li+2018's disc and Amores & Lepine 2005's Model A (galaxy.DUST_MODELS): the kernel's column against a
    fine trapezoid, 1 % or 1 mmag, and the tables against the reference given that column."""
    lon, b = np.radians(lb[0]), np.radians(lb[1])
    counts, a0 = galaxy.line_of_sight(np.array([lon]), np.array([b]), galaxy.model_params(dust=dust))
    np.testing.assert_allclose(counts[0], naive.line_of_sight(lon, b, a0[0]), rtol=1e-9, atol=1e-12)
    d = galaxy.DIST_EDGES_PC[::8] * 1e-3
    np.testing.assert_allclose(a0[0, ::8], naive.a0_column(d, lon, b, dust), rtol=1e-2, atol=1e-3)


@settings(max_examples=25, deadline=None)
@given(st.sampled_from(sorted(galaxy.BULGE_MODELS)), st.tuples(st.floats(-20.0, 20.0), st.floats(-15.0, 15.0)))
def test_each_bulge_law_of_the_kernel_equals_the_reference(name, lb):
    """The three transcribed bulge/bar laws (galaxy.BULGE_MODELS, one generalised kernel law) towards the
    inner Galaxy, where the bulge dominates."""
    lon, b = np.radians(lb[0] % 360.0), np.radians(lb[1])
    params, local = galaxy.model_params(bulge=name), galaxy.local_densities(bulge=name)
    counts, a0 = galaxy.line_of_sight(np.array([lon]), np.array([b]), params, local)
    np.testing.assert_allclose(counts[0], naive.line_of_sight(lon, b, a0[0], bulge=name), rtol=1e-9, atol=1e-12)


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 2**40), st.integers(0, 659_519 - 40), st.integers(1, 39))
def test_a_pixel_s_sources_do_not_depend_on_the_others(seed, first, split):
    pixels = np.arange(first, first + 40)
    whole = galaxy.materialise(seed, pixels, 0.02, physics=True)
    parts = [galaxy.materialise(seed, pixels[:split], 0.02, physics=True),
             galaxy.materialise(seed, pixels[split:], 0.02, physics=True)]
    for k in range(3):  # sources, their physics, the pixels
        assert whole[k].equals(pa.concat_tables([parts[0][k], parts[1][k]]))
    assert whole[0].equals(galaxy.materialise(seed, pixels, 0.02))  # the physics takes no draws


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**40), DIRECTIONS)
def test_each_source_s_photometry_follows_from_its_physics(seed, lb):
    """Row for row: a single star's G and BP-RP are the naive law of its absolute G, distance, A0 and
    intrinsic colour; a merged pair's E(BP-RP) / A0 lies in the law's range (a flux-weighted mean of its two
    stars'); a resolved companion follows its primary, at the same distance and A0."""
    centre = sky.pixel_of_unit(galaxy.unit_of_lb(*lb)[None])[0]
    pixels = np.arange(max(centre - 3, 0), min(centre + 3, sky.N_PIXELS))
    sources, physics, sky_pixels = galaxy.materialise(seed, pixels, 0.05, physics=True)
    s, p = sources.to_pandas(), physics.to_pandas()
    assert (s["source_id"] == p["source_id"]).all() and sky_pixels["pixel"].to_numpy().tolist() == pixels.tolist()
    merged = (p["companion"] == COMPANION_MERGED).to_numpy()
    g_mag, bp_rp = naive.photometry(p["abs_g_mag"].to_numpy(np.float64), p["distance_pc"].to_numpy(np.float64),
                                    p["a0_mag"].to_numpy(np.float64), p["bp_rp0"].to_numpy(np.float64))
    np.testing.assert_allclose(s["g_mag"].to_numpy()[~merged], g_mag[~merged], atol=2e-5)
    np.testing.assert_allclose(s["bp_rp"].to_numpy()[~merged], bp_rp[~merged], atol=2e-5)
    reddening = (s["bp_rp"] - p["bp_rp0"]).to_numpy()[merged]
    a0 = p["a0_mag"].to_numpy()[merged]
    x, a = np.meshgrid(np.linspace(*galaxy.K_X_RANGE, 60), np.linspace(0.0, galaxy.K_A0_MAX, 200))
    law = naive.extinction_ratio(galaxy.K_BP, x, a) - naive.extinction_ratio(galaxy.K_RP, x, a)
    assert np.all(reddening >= law.min() * a0 - 1e-4) and np.all(reddening <= law.max() * a0 + 1e-4)
    secondary = np.flatnonzero(p["companion"].to_numpy() == COMPANION_SECONDARY)
    assert np.all(p["companion"].to_numpy()[secondary - 1] == COMPANION_PRIMARY)
    for column in ("distance_pc", "a0_mag", "pair_sep_arcsec"):
        assert np.array_equal(p[column].to_numpy()[secondary], p[column].to_numpy()[secondary - 1])
    assert p["pair_sep_arcsec"].isna().to_numpy().tolist() == (p["companion"] == 0).to_numpy().tolist()
