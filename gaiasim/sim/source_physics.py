"""Per-star truth of the population sky (``sky = "galaxy"``): ``truth/source_physics``, one row per source of
``truth/sources``, keyed by ``source_id`` (docs/sky.md section 6b).

A table of its own rather than extra columns of ``sky.TRUTH_SOURCES``: the toy sky's truth files keep their
bytes (the toy sky writes no such table), and the pipeline, which never reads the truth, is untouched. Only
the harness reads it (``truth_source_physics``: an empty view for a dataset without it), to check the sky
against the published numbers (:mod:`gaiasim.validate.sky_fidelity`).

A source is one star, or a star and an unresolved companion merged into one image (``companion`` 2): its
distance, population and A0 are then the primary's, its intrinsic colour and absolute magnitude the pair's.
"""

from __future__ import annotations

import pyarrow as pa

#: ``population`` codes, in the order of gaiasim.sim.galaxy.POPULATIONS.
POPULATION_NAMES = ("thin", "thick", "halo", "bulge")
#: ``companion`` codes (docs/sky.md section 6): what became of the star's companion.
COMPANION_NAMES = (
    "none",  # 0: a single star
    "unseen",  # 1: a companion lighter than M8V or wider than the pair limit: adds no light, not drawn
    "merged",  # 2: closer than Gaia resolves: merged into this source (fluxes summed)
    "undetected",  # 3: resolved, but the companion itself is not detected
    "primary",  # 4: resolved: this source's companion is the next source of the pixel
    "secondary",  # 5: this source is the resolved companion of the source before it
)
COMPANION_MERGED, COMPANION_PRIMARY, COMPANION_SECONDARY = 2, 4, 5

TRUTH_SOURCE_PHYSICS = pa.schema(
    [
        pa.field("source_id", pa.int64(), nullable=False, metadata={"doc": "truth_sources.source_id"}),
        pa.field("population", pa.int8(), nullable=False,
                 metadata={"doc": "0 thin disc, 1 thick disc, 2 halo, 3 bulge (source_physics.POPULATION_NAMES)"}),
        pa.field("giant", pa.bool_(), nullable=False, metadata={"doc": "drawn from the giants' luminosity function"}),
        pa.field("companion", pa.int8(), nullable=False,
                 metadata={"doc": "0 none, 1 unseen, 2 merged, 3 undetected, 4 primary, 5 secondary "
                                  "(source_physics.COMPANION_NAMES)"}),
        pa.field("distance_pc", pa.float32(), nullable=False, metadata={"unit": "pc"}),
        pa.field("a0_mag", pa.float32(), nullable=False,
                 metadata={"unit": "mag", "doc": "extinction A0 at 550 nm towards the star (with its 10 % scatter)"}),
        pa.field("abs_g_mag", pa.float32(), nullable=False,
                 metadata={"unit": "mag", "doc": "absolute G without extinction (a merged pair: both stars)"}),
        pa.field("bp_rp0", pa.float32(), nullable=False,
                 metadata={"unit": "mag", "doc": "intrinsic BP-RP; truth_sources.bp_rp - bp_rp0 is E(BP-RP) (a "
                                                 "merged pair: the same flux weights as its observed colour)"}),
        pa.field("pair_sep_arcsec", pa.float32(), nullable=True,
                 metadata={"unit": "arcsec", "doc": "projected separation of the pair; null without a companion"}),
    ]
)

#: ``truth/sky_pixels``: every pixel the galaxy sky materialised (with or without sources) and the model's
#: Poisson mean of its primaries at the dataset's scale (companions not included): the denominator of a
#: density per sky region, and the model a pixel's count is checked against.
TRUTH_SKY_PIXELS = pa.schema(
    [
        pa.field("pixel", pa.int32(), nullable=False, metadata={"doc": "igloo sky pixel (sky.py)"}),
        pa.field("expected_primaries", pa.float64(), nullable=False,
                 metadata={"doc": "Poisson mean of the pixel's primaries at the dataset's scale (galaxy.py)"}),
    ]
)
