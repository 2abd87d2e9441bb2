"""The reference catalogue given to the pipeline: the sky as a previous cycle saw it.

A previous cycle's product, not the truth with noise (docs/crowding-and-alerts-sources.md section 2):

- **its own ids**: every entry's ``source_id`` is a keyed permutation (:func:`catalogue_ids`) of one truth
  id, so ids are unique int64, the same for the same seed, disjoint from the truth ids, and not derivable
  from them without the key; the harness links them to the truth in ``truth/catalogue_links``
  (:data:`TRUTH_CATALOGUE_LINKS`), which the pipeline never reads;
- **catalogue errors**: mean positions and magnitudes perturbed by the PyGaia end-of-mission error models
  (docs/facts.md section 5);
- **missing faint sources** (:meth:`CataloguePlan.p_missing`), **merged pairs** (truth sources closer than
  the catalogue's resolution become one entry) and **spurious entries** (no truth source), each switchable
  in :class:`CataloguePlan` and recorded in the links;
- **no epoch propagation**: the truth sky (gaiasim.sim.sky) has no proper motions, so the catalogue's
  positions are the sky's at any epoch (docs/crowding-and-alerts-sources.md section 2.2 item 6: future work).

Written partitioned by sky region (declination band), in the pipeline's CATALOGUE schema. Merges and the
neighbour columns of the links are found within one generation chunk (gaiasim.sim.slices.pixel_chunks): a
pair split by a chunk boundary is two entries and has no neighbour recorded (chunks are thousands of pixels
of ~0.06 deg^2; only pairs straddling a chunk's edge are affected).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
from scipy.spatial import cKDTree

from gaiasim import dataset as ds
from gaiasim.sim.instrument.focal_plane import MAS_RAD, radec_from_unit, unit_from_radec
from gaiasim.sim.sky import N_RA
from pipeline import schemas

#: Igloo bands per catalogue partition (sky region): 18 regions of 40 bands.
BANDS_PER_REGION = 40
#: Release whose precision the catalogue has: PyGaia t_factor for DR3 (docs/facts.md section 5).
T_FACTOR = 1.0


def position_sigma_mas(g_mag: np.ndarray) -> np.ndarray:
    """Catalogue position error: 0.75 x the PyGaia parallax error (docs/facts.md section 5)."""
    z = 10.0 ** (0.4 * (np.maximum(g_mag, 13.0) - 15.0))
    return 0.75 * np.sqrt(40.0 + 800.0 * z + 30.0 * z * z) * T_FACTOR / 1000.0


def g_transit_sigma_mag(g_mag: np.ndarray) -> np.ndarray:
    """Per-transit G scatter, PyGaia photometric model with its 20 % margin (docs/facts.md section 5)."""
    z = 10.0 ** (0.4 * (np.maximum(g_mag, 12.0) - 15.0))
    return 1.2e-3 * np.sqrt(0.04895 * z * z + 1.8633 * z + 0.0001985)


def observe(sources: pa.Table, rng: np.random.Generator) -> pa.Table:
    """The catalogue's view of ``sources``: positions and G perturbed by their errors."""
    g = sources["g_mag"].to_numpy().astype(np.float64)
    u = unit_from_radec(sources["ra_deg"].to_numpy(), sources["dec_deg"].to_numpy())
    # Perturb the direction by a 2D Gaussian of sigma per axis: add a tangent vector and renormalise.
    sigma_rad = position_sigma_mas(g) * MAS_RAD
    tangent = rng.normal(0.0, 1.0, u.shape) * sigma_rad[:, None]
    tangent -= np.sum(tangent * u, axis=1, keepdims=True) * u
    ra, dec = radec_from_unit(u + tangent)
    sigma_g = g_transit_sigma_mag(g) / np.sqrt(70.0)  # mean of ~70 transits (docs/facts.md section 1)
    return pa.table(
        {
            "source_id": sources["source_id"].to_numpy(),
            "ra_deg": ra,
            "dec_deg": dec,
            "g_mag": (g + rng.normal(0.0, 1.0, len(g)) * sigma_g).astype(np.float32),
            "g_mag_sigma": g_transit_sigma_mag(g).astype(np.float32),
        },
        schema=schemas.CATALOGUE,
    )


#: Largest separation at which a truth source's nearest neighbour is recorded in the links, arcsec: the
#: pairs whose crossmatch is reported per separation and magnitude-difference bin (gaiasim.validate.xm_pairs).
NEIGHBOUR_ARCSEC = 2.0
ARCSEC_RAD = np.pi / (180.0 * 3600.0)

#: What ties a catalogue entry to the truth: one row per truth source the catalogue was built from, and one
#: per spurious entry. Schema defined once here; gaiasim.sim.truth lists it among the truth tables.
TRUTH_CATALOGUE_LINKS = pa.schema(
    [
        pa.field("catalogue_source_id", pa.int64(), nullable=True,
                 metadata={"doc": "the entry's source_id in catalogue/ (what the run's transits carry); null: "
                                  "the truth source is missing from the catalogue"}),
        pa.field("source_id", pa.int64(), nullable=True,
                 metadata={"doc": "truth source (truth_sources.source_id); null: a spurious entry"}),
        pa.field("relation", pa.string(), nullable=False,
                 metadata={"doc": "single (one truth source, one entry), merged (one of the truth sources of a "
                                  "merged entry), missing (not in the catalogue), spurious (an entry of no source)"}),
        pa.field("neighbour_sep_arcsec", pa.float32(), nullable=True,
                 metadata={"unit": "arcsec", "doc": "distance to the nearest other truth source, when within "
                                                    "NEIGHBOUR_ARCSEC (null: none, or a spurious entry)"}),
        pa.field("neighbour_delta_g_mag", pa.float32(), nullable=True,
                 metadata={"unit": "mag", "doc": "G of that neighbour minus this source's G"}),
    ]
)
RELATIONS = ("single", "merged", "missing", "spurious")


@dataclass(frozen=True)
class CataloguePlan:
    """The imperfections of the catalogue; each can be switched off (``False``/0) for a clean catalogue."""

    #: Missing faint sources: a logistic completeness in G, 50 % at ``completeness_g50_mag`` [U: docs/
    #: crowding-and-alerts-sources.md row 2.7, DR1 holds 97.7 % of its sources brighter than G 20.7; row 2.2,
    #: the IGSL aimed at G 21], complete brighter than ``complete_below_g_mag`` [U]: 1 mag fainter than the
    #: alert pipeline's new-source limit (G 19, pipeline/data/alerts.toml, docs/facts.md section 6), so a
    #: missing source's unmatched transits never make a new-source alert (REQ-ALR-002).
    missing_faint: bool = True
    complete_below_g_mag: float = 20.0
    completeness_g50_mag: float = 20.9
    completeness_width_mag: float = 0.2
    #: Merged pairs: truth sources closer than this are one entry, arcsec [U: 0.4, between the 0.23 AL and
    #: 0.70 AC resolution of an equal-brightness double, de Bruijne+2015, docs/crowding-and-alerts-sources.md
    #: row 1.7 and section 2.2 item 2; 0 switches merging off].
    merge_arcsec: float = 0.4
    #: Spurious entries (docs/crowding-and-alerts-sources.md rows 2.1, 2.3, 2.11: the source lists carry
    #: errors, duplicates and spurious sources; no published rate): each catalogued source brighter than
    #: ``spurious_host_g_mag`` gets one with probability ``spurious_bright_fraction`` [U], any other with
    #: ``spurious_fraction`` [U], placed ``spurious_offset_arcsec`` from it (uniform, [U]: the spikes and
    #: ghosts of a bright star) with G uniform in ``spurious_g_range_mag`` [U: faint, as ghosts are].
    spurious_host_g_mag: float = 12.0
    spurious_bright_fraction: float = 0.2
    spurious_fraction: float = 1e-4
    spurious_offset_arcsec: tuple[float, float] = (2.0, 30.0)
    spurious_g_range_mag: tuple[float, float] = (19.0, 20.7)

    def p_missing(self, g_mag: np.ndarray) -> np.ndarray:
        """Probability that a (possibly merged) source of G ``g_mag`` is missing from the catalogue."""
        g = np.asarray(g_mag, dtype=np.float64)
        if not self.missing_faint:
            return np.zeros_like(g)
        p = 1.0 / (1.0 + np.exp(-(g - self.completeness_g50_mag) / self.completeness_width_mag))
        return np.where(g < self.complete_below_g_mag, 0.0, p)


#: The catalogue the simulator writes.
DEFAULT_PLAN = CataloguePlan()
#: A catalogue with every source once and nothing else (ids still the catalogue's own).
CLEAN_PLAN = CataloguePlan(missing_faint=False, merge_arcsec=0.0, spurious_bright_fraction=0.0,
                           spurious_fraction=0.0)

#: Catalogue ids are CATALOGUE_ID_BASE + a permutation of [0, 2**56): disjoint from every truth id (the sky's
#: are below 2**55: pixel < 2**20 shifted by 35 bits).
CATALOGUE_ID_BASE = 1 << 56
_HALF_BITS = 28
_HALF_MASK = np.uint64((1 << _HALF_BITS) - 1)
#: The key of a spurious entry: its host's truth id with this bit set (sky.materialise numbers a pixel's
#: sources below 2**33; variability's new sources use bit 34).
SPURIOUS_KEY_BIT = 1 << 33
_ID_STREAM = 0xCA7A_1065


def _mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser (Steele, Lea & Flood 2014), on uint64 arrays (wrapping arithmetic)."""
    x = np.asarray(x, dtype=np.uint64)
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def catalogue_ids(seed: int, keys: np.ndarray) -> np.ndarray:
    """The catalogue ids of ``keys`` (truth ids, non-negative, < 2**56): a 4-round Feistel network keyed by
    the seed, a bijection, so distinct keys get distinct ids, the same for the same seed."""
    keys = np.asarray(keys, dtype=np.int64)
    if len(keys) and (keys.min() < 0 or keys.max() >= 1 << (2 * _HALF_BITS)):
        raise ValueError("catalogue id keys must lie in [0, 2**56)")
    u = keys.astype(np.uint64)
    left, right = u >> np.uint64(_HALF_BITS), u & _HALF_MASK
    for r in range(4):
        round_key = _mix64(np.uint64((int(seed) * 4 + r) & (2**64 - 1)) ^ np.uint64(_ID_STREAM))
        left, right = right, left ^ (_mix64(right ^ round_key) & _HALF_MASK)
    return ((left << np.uint64(_HALF_BITS)) | right).astype(np.int64) + CATALOGUE_ID_BASE


def _units(ra_deg: np.ndarray, dec_deg: np.ndarray) -> np.ndarray:
    return unit_from_radec(np.asarray(ra_deg, dtype=np.float64), np.asarray(dec_deg, dtype=np.float64)).reshape(-1, 3)


def _chord(arcsec: float) -> float:
    return 2.0 * np.sin(0.5 * arcsec * ARCSEC_RAD)


def _close_pairs(u: np.ndarray, arcsec: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair (i < j) of the unit vectors ``u`` at most ``arcsec`` apart, and its chord: one k-d tree and
    one pair search serve the neighbours and the merges. (A k = 2 query of every source took ~4 s per 2 M
    sources against ~0.5 s for the pairs; an unbalanced tree without compacted nodes builds in a third of
    the default's time.)"""
    if len(u) < 2:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0)
    pairs = cKDTree(u, balanced_tree=False, compact_nodes=False).query_pairs(_chord(arcsec), output_type="ndarray")
    i, j = pairs[:, 0].astype(np.int64), pairs[:, 1].astype(np.int64)
    return i, j, np.linalg.norm(u[i] - u[j], axis=1)


def _merge_groups(n: int, i: np.ndarray, j: np.ndarray, chord: np.ndarray, merge_arcsec: float) -> np.ndarray:
    """Group label of each of ``n`` sources: sources linked by separations below ``merge_arcsec`` share one
    (the connected components of the close pairs (i, j) of :func:`_close_pairs`); a source alone is its own."""
    label = np.arange(n)
    close = chord <= _chord(merge_arcsec) if merge_arcsec > 0 else np.zeros(len(chord), bool)
    if not close.any():
        return label
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(int(close.sum())), (i[close], j[close])), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def _neighbours(g: np.ndarray, i: np.ndarray, j: np.ndarray, chord: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(separation in arcsec, G of the neighbour - G) of each source's nearest other source within
    :data:`NEIGHBOUR_ARCSEC` among the close pairs (i, j) of :func:`_close_pairs` (at equal separations the
    lower index); NaN where there is none."""
    n = len(g)
    sep, dg = np.full(n, np.nan), np.full(n, np.nan)
    near = chord <= _chord(NEIGHBOUR_ARCSEC)
    a, b, c = np.r_[i[near], j[near]], np.r_[j[near], i[near]], np.r_[chord[near], chord[near]]
    order = np.lexsort((b, c, a))
    nearest = order[np.r_[True, a[order][1:] != a[order][:-1]]] if len(order) else order
    sep[a[nearest]] = 2.0 * np.arcsin(0.5 * c[nearest]) / ARCSEC_RAD
    dg[a[nearest]] = g[b[nearest]] - g[a[nearest]]
    return sep, dg


def build(sources: pa.Table, rng: np.random.Generator, seed: int,
          plan: CataloguePlan = DEFAULT_PLAN) -> tuple[pa.Table, pa.Table, np.ndarray]:
    """The catalogue entries of ``sources`` (truth TRUTH_SOURCES rows), their links to the truth
    (:data:`TRUTH_CATALOGUE_LINKS`) and each entry's sky pixel (the partition it is written to).

    Merges first (a blend is one source to the previous cycle), then completeness on the entry's G, then
    catalogue errors, then spurious entries around the catalogued sources. Draws come from ``rng`` only.
    """
    sid = sources["source_id"].to_numpy()
    g = sources["g_mag"].to_numpy().astype(np.float64)
    pixel = sources["pixel"].to_numpy()
    u = _units(sources["ra_deg"].to_numpy(), sources["dec_deg"].to_numpy())
    n = len(sid)
    close = _close_pairs(u, max(NEIGHBOUR_ARCSEC, plan.merge_arcsec))
    nb_sep, nb_dg = _neighbours(g, *close)

    # Merged pairs: one entry per group, at the flux-weighted position with the summed flux, keyed (id, pixel)
    # by its brightest member.
    group = _merge_groups(n, *close, plan.merge_arcsec)
    groups, entry_of = np.unique(group, return_inverse=True)
    m = len(groups)
    flux = 10.0 ** (-0.4 * g)
    entry_flux = np.bincount(entry_of, flux, minlength=m)
    entry_u = np.stack([np.bincount(entry_of, flux * u[:, k], minlength=m) for k in range(3)], axis=1)
    entry_u /= np.linalg.norm(entry_u, axis=1, keepdims=True) if m else 1.0
    entry_g = -2.5 * np.log10(entry_flux) if m else np.empty(0)
    members = np.bincount(entry_of, minlength=m)
    first = np.empty(m, dtype=np.int64)  # each entry's brightest member (the lowest index of equals)
    first[entry_of] = np.arange(n)  # an entry of one
    merged = np.flatnonzero(members[entry_of] > 1)
    by_flux = merged[np.lexsort((-flux[merged], entry_of[merged]))]  # members of each merged entry, brightest first
    heads = by_flux[np.r_[True, entry_of[by_flux][1:] != entry_of[by_flux][:-1]]] if len(by_flux) else by_flux
    first[entry_of[heads]] = heads

    # Completeness on the entry's G, then the catalogue's errors.
    present = rng.random(m) >= plan.p_missing(entry_g)
    ra, dec = radec_from_unit(entry_u) if m else (np.empty(0), np.empty(0))
    kept = pa.table({"source_id": sid[first], "ra_deg": ra, "dec_deg": dec, "g_mag": entry_g.astype(np.float32),
                     "pixel": pixel[first]}).filter(pa.array(present))
    entries = observe(kept, rng)
    entry_id = catalogue_ids(seed, kept["source_id"].to_numpy())
    entry_pixel = kept["pixel"].to_numpy()

    # Spurious entries near catalogued sources, G faint, no truth source.
    host_g = kept["g_mag"].to_numpy().astype(np.float64)
    p_spur = np.where(host_g < plan.spurious_host_g_mag, plan.spurious_bright_fraction, plan.spurious_fraction)
    host = np.flatnonzero(rng.random(len(host_g)) < p_spur)
    k = len(host)
    lo, hi = plan.spurious_offset_arcsec
    offset_rad = rng.uniform(lo, hi, k) * ARCSEC_RAD
    angle = rng.uniform(0.0, 2.0 * np.pi, k)
    spur_g = rng.uniform(*plan.spurious_g_range_mag, k)
    hu = _units(entries["ra_deg"].to_numpy()[host], entries["dec_deg"].to_numpy()[host])
    east = np.cross([0.0, 0.0, 1.0], hu)
    east /= np.maximum(np.linalg.norm(east, axis=1, keepdims=True), 1e-300)
    north = np.cross(hu, east)
    su = hu * np.cos(offset_rad)[:, None] + np.sin(offset_rad)[:, None] * (
        np.cos(angle)[:, None] * north + np.sin(angle)[:, None] * east)
    s_ra, s_dec = radec_from_unit(su) if k else (np.empty(0), np.empty(0))
    spur_id = catalogue_ids(seed, kept["source_id"].to_numpy()[host] | SPURIOUS_KEY_BIT)
    spurious = pa.table({"source_id": spur_id, "ra_deg": s_ra, "dec_deg": s_dec,
                         "g_mag": spur_g.astype(np.float32),
                         "g_mag_sigma": g_transit_sigma_mag(spur_g).astype(np.float32)}, schema=schemas.CATALOGUE)
    catalogue = pa.concat_tables([entries.set_column(0, schemas.CATALOGUE.field(0), pa.array(entry_id)), spurious])

    # Links: every truth source once (its entry, or missing), every spurious entry once.
    id_of_entry = np.full(m, -1, dtype=np.int64)
    id_of_entry[np.flatnonzero(present)] = entry_id
    cat_of_source = id_of_entry[entry_of] if n else np.empty(0, np.int64)
    relation = np.where(cat_of_source < 0, "missing", np.where(members[entry_of] > 1, "merged", "single"))
    links = pa.table(
        {
            "catalogue_source_id": pa.array(np.concatenate([cat_of_source, spur_id]),
                                            mask=np.r_[cat_of_source < 0, np.zeros(k, bool)]),
            "source_id": pa.array(np.r_[sid, np.zeros(k, np.int64)], mask=np.r_[np.zeros(n, bool), np.ones(k, bool)]),
            "relation": np.r_[relation, np.full(k, "spurious")].astype(object),
            "neighbour_sep_arcsec": pa.array(np.r_[nb_sep, np.full(k, np.nan)].astype(np.float32), from_pandas=True),
            "neighbour_delta_g_mag": pa.array(np.r_[nb_dg, np.full(k, np.nan)].astype(np.float32), from_pandas=True),
        },
        schema=TRUTH_CATALOGUE_LINKS,
    )
    return catalogue, links, np.r_[entry_pixel, entry_pixel[host]].astype(np.int64)


def write(folder: Path, sources: pa.Table, rng: np.random.Generator, part: int = 0, seed: int = 0,
          plan: CataloguePlan = DEFAULT_PLAN) -> pa.Table:
    """Write the catalogue of ``sources`` as hive-partitioned Parquet: ``region=NN/part-<part>.parquet``;
    returns its links to the truth (:data:`TRUTH_CATALOGUE_LINKS`), for the caller to write as truth."""
    table, links, pixel = build(sources, rng, seed, plan)
    region = pixel // N_RA // BANDS_PER_REGION
    for r in np.unique(region) if len(region) else [0]:
        path = folder / f"region={r:02d}" / f"part-{part:05d}.parquet"
        ds.write_table(table.filter(pa.array(region == r)), schemas.CATALOGUE, path)
    return links
