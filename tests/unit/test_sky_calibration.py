"""The sky calibration's shortcut (gaiasim/sim/sky_calibration.py): the giants' share and the local densities are
scanned by reweighting each component's expected counts, not by new line-of-sight passes; that is exact only if
every count is linear in those weights, which this checks against tables rebuilt at another share."""

from __future__ import annotations

import numpy as np
import pytest

from gaiasim.sim import galaxy as g
from gaiasim.sim import sky_calibration as cal


def test_reweighting_the_giants_share_equals_rebuilding_the_tables():
    lon, lat = np.radians([10.0, 200.0, 90.0]), np.radians([2.0, -30.0, 85.0])
    local = g.local_densities(thin=0.05, bulge_scale=0.5)
    t = g.tables()
    for giants in (0.003, 0.012):
        rebuilt = g.detected_tables(g.component_lfs(giants), t["ridge"])
        want, _ = g.line_of_sight(lon, lat, None, local, rebuilt)
        unit, _ = g.line_of_sight(lon, lat, None, np.ones(len(g.GROUPS)))
        got = unit.sum(axis=2) @ cal.component_weights(local, giants)
        np.testing.assert_allclose(got, want.sum(axis=(1, 2)), rtol=1e-10)
        assert got.sum() != pytest.approx(unit.sum(axis=2) @ cal.component_weights(local), rel=1e-3)


def test_the_thin_disc_solved_for_the_sky_total_gives_edr3_s_count():
    m = {"total": np.concatenate([np.linspace(1e10, 3e10, len(g.COMPONENTS) - 2), [1e6, 2e6]])}
    local = cal.solve(m, g.HALO_TO_THIN, g.BULGE_MODEL, g.BULGE_NUMBER_SCALE, 0.009)
    w = cal.component_weights(local, 0.009)
    assert m["total"] @ w == pytest.approx(cal.sf.EDR3_SOURCES_WITH_G, rel=1e-12)
    assert local[:-3].sum() > 0 and local[-1] == pytest.approx(g.local_densities()[-1])
