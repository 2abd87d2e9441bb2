"""The bright-star environment: transits that may be spurious detections around a much brighter one.

Gaia's on-board detection finds spurious images in the PSF wings and diffraction spikes of bright stars
(de Bruijne+2015, A&A 576, A74, Fig. 6: a G ~ 13 star with 4 "ghosts" up to a few dozen SM samples away;
GDR2 documentation section 10.2.3: spikes once taken for new sources; Fabricius+2016, A&A 595, A3). They
are fixed in the focal plane, so the two fields of view of one scan see them at nearly the same place on
the sky: a both-FoV rule does not remove them, a test of the bright-star environment does (Hodgkin+2021,
A&A 652, A76; docs/crowding-and-alerts-sources.md sections 1.2 item 5 and 3.2 item 5).

A transit is in a bright star's environment (:data:`FLAG_BRIGHT_ENVIRONMENT`) when a star brighter than
``bright_g_mag`` and at least ``delta_g_mag`` brighter than the transit lies near it:

- a transit of the same scan (:func:`bright_environment`): same field of view and CCD row, within
  ``al_arcsec`` along scan (its time over the scan rate) and ``ac_arcsec`` across scan (its AF1 AC pixel);
- or a reference-catalogue source within ``catalogue_radius_arcsec`` on the sky (:func:`near_bright_source`):
  the bright star whose own transit did not reach the ground (GSA tests the environment against bright
  catalogue stars, Hodgkin+2021).

Such a transit (:mod:`pipeline.hourly`):

- keeps a catalogue match only when its G agrees with the source's within ``match_max_dg_mag`` (a real
  faint neighbour matches its own entry; a spurious detection only a chance one, at a random magnitude);
- is never the evidence of an alert (GSA's bright-star environment test).

Every threshold is an [U] placeholder in ``pipeline/data/environment.toml``. A bright transit and its
neighbours in two hours, or in two slices of one hour, are not compared (a few in 10^4 at full scale).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, fields
from importlib.resources.abc import Traversable
from pathlib import Path

import numpy as np

from pipeline import crossmatch, geometry, io
from pipeline.data import packaged

#: Transit flag: in the environment of a much brighter transit of the same scan (a spurious-detection suspect).
FLAG_BRIGHT_ENVIRONMENT = 1 << 20
DEFAULT_CONFIG_PATH = packaged("environment.toml")
_ARCSEC_PER_AC_PX = geometry.PIXEL_AC_RAD / geometry.ARCSEC_RAD


class EnvironmentConfigError(io.InputError, ValueError):
    """A bad environment configuration: one line naming the key and the fix."""


@dataclass(frozen=True)
class EnvironmentConfig:
    #: Transits brighter than this have an environment, G mag [U]: spurious detections come from bright stars.
    bright_g_mag: float = 16.0
    #: A transit at least this much fainter than the bright one is a suspect, mag [U] (ghosts are 5-9 mag fainter).
    delta_g_mag: float = 4.0
    #: Extent of the environment along and across scan, arcsec [U]: "a few dozen" SM samples (de Bruijne+2015
    #: Fig. 6; 40 samples of 2 x 2 pixels are 4.7 arcsec AL and 14.1 arcsec AC), with a margin.
    al_arcsec: float = 5.5
    ac_arcsec: float = 15.0
    #: Radius of the environment of a bright catalogue source, arcsec [U]: the AL and AC extents combined.
    catalogue_radius_arcsec: float = 15.0
    #: A suspect keeps its catalogue match only within this |G - catalogue G|, mag [U].
    match_max_dg_mag: float = 1.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise EnvironmentConfigError(f"{f.name} = {value!r}: must be a finite number")
        for name, ok, rule in (("bright_g_mag", -2.0 <= self.bright_g_mag <= 25.0, "in [-2, 25] mag"),
                               ("delta_g_mag", self.delta_g_mag >= 0, ">= 0 mag"),
                               ("al_arcsec", 0 <= self.al_arcsec <= 60, "in [0, 60] arcsec"),
                               ("ac_arcsec", 0 <= self.ac_arcsec <= 60, "in [0, 60] arcsec"),
                               ("catalogue_radius_arcsec", 0.2 <= self.catalogue_radius_arcsec <= 60,
                                "in [0.2, 60] arcsec"),
                               ("match_max_dg_mag", self.match_max_dg_mag >= 0, ">= 0 mag")):
            if not ok:
                raise EnvironmentConfigError(f"{name} = {getattr(self, name)!r}: must be {rule}")


@functools.cache
def default_config() -> EnvironmentConfig:
    return load_environment_config()


def load_environment_config(path: Path | Traversable = DEFAULT_CONFIG_PATH) -> EnvironmentConfig:
    """The :class:`EnvironmentConfig` of a TOML file whose keys are its field names (all optional)."""
    return io.load_config(path, EnvironmentConfig, EnvironmentConfigError, "the environment config",
                          "pipeline/data/environment.toml")


def bright_environment(obmt_ns: np.ndarray, fov: np.ndarray, ccd_row: np.ndarray, ac_px: np.ndarray,
                       g_mag: np.ndarray, config: EnvironmentConfig | None = None,
                       saturated: np.ndarray | None = None) -> np.ndarray:
    """Which transits lie in the environment of a much brighter transit of the same scan (see the module doc).
    A transit without a finite G is not a suspect, nor bright unless ``saturated``: a saturated transit is
    brighter than any G it may have been given (its fit lost the peak; most have no G), so every transit
    with a G in its reach is a suspect."""
    config = config or default_config()
    t = np.asarray(obmt_ns, dtype=np.int64)
    g = np.asarray(g_mag, dtype=np.float64)
    ac = np.asarray(ac_px, dtype=np.float64)
    group = np.asarray(fov, dtype=np.int64) * 16 + np.asarray(ccd_row, dtype=np.int64)
    reach_ns = config.al_arcsec * geometry.ARCSEC_RAD / geometry.SCAN_RATE_RAD_S * 1e9
    suspect = np.zeros(len(t), dtype=bool)
    g_parent = g if saturated is None else np.where(saturated, -np.inf, g)
    bright = np.flatnonzero(g_parent < config.bright_g_mag)  # NaN: False
    if not len(bright):
        return suspect
    for key in np.unique(group[bright]):
        members = np.flatnonzero(group == key)
        members = members[np.argsort(t[members], kind="stable")]
        tm = t[members]
        parents = bright[group[bright] == key]
        lo = np.searchsorted(tm, t[parents] - reach_ns, side="left")
        hi = np.searchsorted(tm, t[parents] + reach_ns, side="right")
        size = hi - lo
        b = np.repeat(parents, size)
        i = members[np.arange(size.sum()) - np.repeat(np.cumsum(size) - size, size) + np.repeat(lo, size)]
        near = ((i != b) & (np.abs(ac[i] - ac[b]) * _ARCSEC_PER_AC_PX <= config.ac_arcsec)
                & (g[i] - g_parent[b] >= config.delta_g_mag))  # NaN G: False
        suspect[i[near]] = True
    return suspect


def near_bright_source(u: np.ndarray, g_mag: np.ndarray, u_catalogue: np.ndarray, g_catalogue: np.ndarray,
                       config: EnvironmentConfig | None = None) -> np.ndarray:
    """Which transits (unit vectors ``u``, G) have a catalogue source brighter than ``bright_g_mag`` within
    ``catalogue_radius_arcsec`` and at least ``delta_g_mag`` brighter than them: the brightest source within
    the radius is judged, not the nearest (a G 14 neighbour nearer than a G 3 star hid the star's ghosts)."""
    config = config or default_config()
    u = np.asarray(u, dtype=np.float64).reshape(-1, 3)
    g = np.asarray(g_mag, dtype=np.float64)
    g_cat = np.asarray(g_catalogue, dtype=np.float64)
    bright = np.flatnonzero(np.isfinite(g_cat) & (g_cat < config.bright_g_mag))
    if not len(bright) or not len(u):
        return np.zeros(len(u), dtype=bool)
    index = crossmatch.build_index(np.asarray(u_catalogue, dtype=np.float64).reshape(-1, 3)[bright],
                                   1000.0 * config.catalogue_radius_arcsec, g_cat[bright])
    row = crossmatch.brightest(index, u)
    with np.errstate(invalid="ignore"):
        return (row >= 0) & (g - g_cat[bright][np.maximum(row, 0)] >= config.delta_g_mag)


def match_kept(g_mag: np.ndarray, g_catalogue: np.ndarray, config: EnvironmentConfig | None = None) -> np.ndarray:
    """Whether a suspect's match to a source of catalogue G ``g_catalogue`` stands (magnitudes agree)."""
    config = config or default_config()
    with np.errstate(invalid="ignore"):
        return np.abs(np.asarray(g_mag, dtype=np.float64) - g_catalogue) <= config.match_max_dg_mag
