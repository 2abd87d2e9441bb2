"""Science alerts of one day: known sources that brighten or fade, and sources new to the catalogue.

Gaia Science Alerts (docs/facts.md section 6, Hodgkin+2021) raise two classes of event, and need a detection in
both fields of view. The rules here, every threshold an [U] placeholder set in ``pipeline/data/alerts.toml``:

- **brightening / fading**: a transit of a matched source *deviates* when its G differs from the source's
  catalogue mean by at least ``min_delta_g_mag`` and by at least ``min_significance_sigma`` times sigma =
  sqrt(g_mag_sigma^2 + g_mag_err^2) (the catalogue's per-transit scatter and the transit's formal error); a
  fading one must also lie within ``max_evidence_sep_mas`` of the source (further out it is more likely an
  uncatalogued fainter neighbour matched in a scan that lost the source itself). A source alerts when its
  transits deviating in one direction number at least ``min_transits`` and include one in FoV 1 and one in FoV 2
  at most ``max_fov_separation_s`` apart (one scan sees a source in both FoVs 106.5 min apart, docs/facts.md
  section 1). When both directions qualify the more significant wins.
- **new source**: unmatched transits (``source_id`` null: no catalogue source within the crossmatch radius; not
  one that lost its source to another transit of the same scan, ``FLAG_MATCH_CONFLICT``: that is a resolved
  neighbour of a catalogued source, such as the two stars of a pair the catalogue merged) brighter than
  ``new_source_g_limit_mag`` are grouped friends-of-friends within ``cluster_radius_mas``; a group alerts under
  the same count and FoV rule.

Only transits with a finite G, G error and FoV 1 or 2 (and, for new sources, a position) take part.

One alert per source or group. ``alert_id`` is the smallest transit_id of the alert's evidence
(``transit_ids``): unique within a day, whatever the row order of the inputs. ``significance_sigma`` is the
Stouffer combination |sum z| / sqrt(n) of the evidence's z = (G - mean) / sigma for known sources, and the
combined detection signal-to-noise sqrt(sum SNR^2), SNR = 2.5 / ln 10 / g_mag_err, for new ones.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, fields
from importlib.resources.abc import Traversable
from pathlib import Path

import numpy as np
import pyarrow as pa

from pipeline import crossmatch, geometry, io, schemas
from pipeline.data import packaged
from pipeline.kernels import alerts as _k

#: The repository's alert thresholds (the defaults of :class:`AlertConfig`, as TOML).
DEFAULT_CONFIG_PATH = packaged("alerts.toml")
BRIGHTENING, FADING, NEW_SOURCE = "brightening", "fading", "new_source"
_MAG_PER_SNR = 2.5 / math.log(10.0)  # sigma_G = 1.0857 / SNR
_TRANSIT_COLUMNS = ("transit_id", "obmt_ns", "fov", "ra_deg", "dec_deg", "source_id", "match_sep_mas", "g_mag",
                    "g_mag_err", "flags")


class AlertConfigError(io.InputError, ValueError):
    """A bad alert configuration: one line naming the key and the fix."""


@dataclass(frozen=True)
class AlertConfig:
    #: Smallest |G - catalogue G| of a deviating transit, mag [U] (docs/facts.md section 6: "|dG| > 1 mag").
    min_delta_g_mag: float = 1.0
    #: Smallest |G - catalogue G| / sqrt(g_mag_sigma^2 + g_mag_err^2) of a deviating transit [U] ("~6 sigma").
    min_significance_sigma: float = 6.0
    #: New sources must be brighter than this G, mag [U] (docs/facts.md section 6: "G < 19").
    new_source_g_limit_mag: float = 19.0
    #: Require evidence in both fields of view (docs/facts.md section 6: GSA needs both FoVs).
    require_both_fovs: bool = True
    #: Longest time between the FoV 1 and FoV 2 evidence, s [U]: 2 h keeps the two FoVs of one scan
    #: (106.5 min apart) and rejects coincidences between scans.
    max_fov_separation_s: float = 7200.0
    #: Fewest evidence transits of an alert.
    min_transits: int = 2
    #: Friends-of-friends linking length of unmatched transits, mas: the crossmatch radius
    #: (pipeline.config.PipelineConfig.match_radius_mas).
    cluster_radius_mas: float = 500.0
    #: Largest distance of a fading transit from its catalogue source, mas [U]. A fading star stays where it
    #: is, and a correct match lies within ~90 mas (pipeline.crossmatch.POSITION_SIGMA_MAS: the AC pixel is
    #: 177 mas wide); a fainter transit further out is more likely an uncatalogued faint neighbour that took
    #: the source in a scan where the source itself was not observed (Gaia Science Alerts test the environment
    #: for fainter near-neighbours, Hodgkin+2021; docs/sky.md section 9). Brightening evidence is not held to
    #: it: a supernova up to 0.4 arcsec from its host's centre pulls the host's image towards itself.
    max_evidence_sep_mas: float = 200.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "require_both_fovs":
                if not isinstance(value, bool):
                    raise AlertConfigError(f"require_both_fovs = {value!r}: must be true or false")
            elif isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise AlertConfigError(f"{f.name} = {value!r}: must be a finite number")
        checks = (
            ("min_delta_g_mag", self.min_delta_g_mag > 0, "> 0 mag"),
            ("min_significance_sigma", self.min_significance_sigma >= 0, ">= 0 sigma"),
            ("new_source_g_limit_mag", -2.0 <= self.new_source_g_limit_mag <= 25.0, "in [-2, 25] mag"),
            ("max_fov_separation_s", self.max_fov_separation_s > 0, "> 0 s"),
            ("min_transits", isinstance(self.min_transits, int) and self.min_transits >= 1, "an integer >= 1"),
            ("max_evidence_sep_mas", self.max_evidence_sep_mas > 0, "> 0 mas"),
            ("cluster_radius_mas", crossmatch.MIN_RADIUS_MAS <= self.cluster_radius_mas < 3.6e6,
             f"in [{crossmatch.MIN_RADIUS_MAS:g} mas, 1 deg)"),
        )
        for name, ok, rule in checks:
            if not ok:
                raise AlertConfigError(f"{name} = {getattr(self, name)!r}: must be {rule}")


def load_alert_config(path: Path | Traversable = DEFAULT_CONFIG_PATH) -> AlertConfig:
    """The :class:`AlertConfig` of a TOML file whose keys are its field names (all optional)."""
    return io.load_config(path, AlertConfig, AlertConfigError, "the alert config", "pipeline/data/alerts.toml")


def _column(table: pa.Table, name: str, what: str, schema: pa.Schema) -> pa.ChunkedArray:
    if name not in table.column_names:
        raise ValueError(f"{what} has no column {name!r}; give a table with the pipeline.schemas.{schema} schema")
    return table[name]


def _floats(column: pa.ChunkedArray) -> np.ndarray:
    """float64 values with nulls as NaN."""
    return column.cast(pa.float64()).fill_null(math.nan).to_numpy()


def _at(values: np.ndarray, row: np.ndarray) -> np.ndarray:
    """``values[row]``, NaN where ``row`` is -1."""
    return np.append(values, math.nan)[row]


def _groups(key: np.ndarray, obmt_ns: np.ndarray, fov: np.ndarray, transit_id: np.ndarray, config: AlertConfig,
            sums: dict[str, np.ndarray]) -> dict:
    """Summaries of candidate transits grouped by ``key``, for the groups that meet the count and FoV rule:
    key, n, first and last obmt_ns, alert_id, the sum of each array of ``sums``, and the evidence
    (``transit_ids``, ascending)."""
    order = np.lexsort((transit_id, obmt_ns, key))
    k, t, f = key[order], obmt_ns[order], fov[order]
    starts = np.flatnonzero(np.r_[True, k[1:] != k[:-1]]) if len(k) else np.empty(0, np.int64)
    counts = np.diff(np.r_[starts, len(k)]).astype(np.int64)
    ok = counts >= config.min_transits
    if config.require_both_fovs:
        # The closest FoV 1 / FoV 2 pair of a group is adjacent in time order: a transit between the two of a
        # pair makes a pair, no further apart, with one of them.
        group_of = np.repeat(np.arange(len(starts)), counts)
        cross = (k[1:] == k[:-1]) & (f[1:] != f[:-1])
        closest = np.full(len(starts), np.inf)
        np.minimum.at(closest, group_of[1:][cross], (t[1:] - t[:-1])[cross].astype(np.float64))
        ok &= closest <= config.max_fov_separation_s * 1e9
    ids = transit_id[np.lexsort((transit_id, key))]  # the same groups, ids ascending
    offsets = pa.array(np.r_[starts, len(k)].astype(np.int32))
    out = {
        "key": k[starts][ok],
        "n": counts[ok],
        "first_obmt_ns": t[starts][ok],
        "last_obmt_ns": t[starts + counts - 1][ok],
        "alert_id": ids[starts][ok],
        "transit_ids": pa.ListArray.from_arrays(offsets, pa.array(ids, pa.int64())).filter(pa.array(ok)),
    }
    for name, values in sums.items():
        out[name] = np.add.reduceat(values[order], starts)[ok] if len(starts) else np.empty(0)
    return out


def _deviations(transits: pa.Table, catalogue: pa.Table, catalogue_row: np.ndarray | None = None) -> dict:
    """The transit columns the alerts use, and each transit's deviation from its catalogue source (its row
    in ``catalogue`` looked up by source id, or ``catalogue_row`` when the caller has it: -1 for none)."""
    cols = {name: _column(transits, name, "the transits table", "TRANSITS") for name in _TRANSIT_COLUMNS}
    cat = {name: _column(catalogue, name, "the catalogue", "CATALOGUE") for name in schemas.CATALOGUE.names}
    d = {
        "cat": cat,
        "tid": cols["transit_id"].to_numpy().astype(np.int64),
        "obmt": cols["obmt_ns"].to_numpy().astype(np.int64),
        "fov": cols["fov"].to_numpy().astype(np.int64),
        "g": _floats(cols["g_mag"]),
        "g_err": _floats(cols["g_mag_err"]),
        "ra": _floats(cols["ra_deg"]),
        "dec": _floats(cols["dec_deg"]),
        "matched": cols["source_id"].is_valid().to_numpy(),
        "sid": cols["source_id"].fill_null(0).to_numpy().astype(np.int64),
        "sep": _floats(cols["match_sep_mas"]),
        "conflict": (cols["flags"].to_numpy() & crossmatch.FLAG_MATCH_CONFLICT) != 0,
    }
    d["usable"] = np.isfinite(d["g"]) & np.isfinite(d["g_err"]) & ((d["fov"] == 1) | (d["fov"] == 2))
    # Known sources: deviations from the catalogue mean.
    cat_id = cat["source_id"].to_numpy().astype(np.int64)

    @functools.cache
    def by_id() -> tuple[np.ndarray, np.ndarray]:
        """The catalogue's order by source id and the ids in that order (sorted once, when first asked for)."""
        order = np.argsort(cat_id, kind="stable")
        return order, cat_id[order]

    def cat_row(source_id: np.ndarray) -> np.ndarray:
        """Catalogue row of each source id, -1 when it is not in the catalogue."""
        cat_order, ids_sorted = by_id()
        pos = np.minimum(np.searchsorted(ids_sorted, source_id), len(cat_id))
        row = np.append(cat_order, -1)[pos]
        return np.where(np.append(cat_id, -1)[row] == source_id, row, -1)

    d["cat_row"] = cat_row
    row = cat_row(d["sid"]) if catalogue_row is None else np.asarray(catalogue_row, dtype=np.int64)
    d["known"] = d["matched"] & d["usable"] & (row >= 0)
    d["delta"] = d["g"] - _at(_floats(cat["g_mag"]), row)
    cat_sigma = _at(_floats(cat["g_mag_sigma"]), row)
    with np.errstate(divide="ignore", invalid="ignore"):
        d["z"] = d["delta"] / np.sqrt(cat_sigma * cat_sigma + d["g_err"] * d["g_err"])
    return d


def _deviating(d: dict, sign: float, config: AlertConfig) -> np.ndarray:
    near = d["sep"] <= config.max_evidence_sep_mas if sign > 0 else True
    return (d["known"] & (sign * d["delta"] >= config.min_delta_g_mag)
            & (sign * d["z"] >= config.min_significance_sigma) & near)


def _new_source_evidence(d: dict, config: AlertConfig) -> np.ndarray:
    return (~d["matched"] & ~d["conflict"] & d["usable"] & np.isfinite(d["ra"]) & np.isfinite(d["dec"])
            & (d["g"] < config.new_source_g_limit_mag))


def candidates(transits: pa.Table, catalogue: pa.Table, config: AlertConfig | None = None,
               catalogue_row: np.ndarray | None = None) -> pa.Table:
    """The transits that may be evidence of an alert: :func:`raise_alerts` over any set of transits that
    holds these gives the same alerts, so a streaming run keeps only these from each time slice.

    ``catalogue_row``: each transit's row in ``catalogue`` (-1 when unmatched), when the caller has it from
    the crossmatch; it spares sorting the catalogue by source id (a full-scale slice loads ~2 M sources).
    """
    config = config or AlertConfig()
    d = _deviations(transits, catalogue, catalogue_row)
    keep = _deviating(d, -1.0, config) | _deviating(d, 1.0, config) | _new_source_evidence(d, config)
    return transits.filter(pa.array(keep))


def raise_alerts(transits: pa.Table, catalogue: pa.Table, config: AlertConfig | None = None) -> pa.Table:
    """The day's alerts (:data:`pipeline.schemas.ALERTS`, sorted by alert_id) from its transits
    (:data:`pipeline.schemas.TRANSITS`) and the reference catalogue (:data:`pipeline.schemas.CATALOGUE`)."""
    config = config or AlertConfig()
    d = _deviations(transits, catalogue)
    cat, cat_row = d["cat"], d["cat_row"]
    tid, obmt, fov, g, g_err, z = d["tid"], d["obmt"], d["fov"], d["g"], d["g_err"], d["z"]
    sid = d["sid"]
    directions = []
    for kind, sign in ((BRIGHTENING, -1.0), (FADING, 1.0)):
        i = np.flatnonzero(_deviating(d, sign, config))
        s = _groups(sid[i], obmt[i], fov[i], tid[i], config, {"g": g[i], "z": z[i]})
        s["kind"] = np.full(len(s["key"]), kind)
        s["significance_sigma"] = np.abs(s["z"]) / np.sqrt(s["n"])
        directions.append(s)
    both = {name: np.concatenate([c[name] for c in directions]) for name in directions[0] if name != "transit_ids"}
    evidence = pa.concat_arrays([c["transit_ids"] for c in directions])
    # One alert per source: the more significant direction, brightening on a tie (it comes first).
    rank = np.r_[np.zeros(len(directions[0]["key"])), np.ones(len(directions[1]["key"]))]
    order = np.lexsort((rank, -both["significance_sigma"], both["key"]))
    first = order[np.r_[True, both["key"][order][1:] != both["key"][order][:-1]]] if len(order) else order
    src_row = cat_row(both["key"][first])
    mean_g = both["g"][first] / np.maximum(both["n"][first], 1)
    old = {
        "alert_id": both["alert_id"][first],
        "kind": both["kind"][first],
        "source_id": pa.array(both["key"][first], pa.int64()),
        "ra_deg": _at(_floats(cat["ra_deg"]), src_row),
        "dec_deg": _at(_floats(cat["dec_deg"]), src_row),
        "g_mag": mean_g,
        "delta_g_mag": pa.array(mean_g - _at(_floats(cat["g_mag"]), src_row), pa.float32()),
        "significance_sigma": both["significance_sigma"][first],
        "n_transits": both["n"][first],
        "first_obmt_ns": both["first_obmt_ns"][first],
        "last_obmt_ns": both["last_obmt_ns"][first],
        "transit_ids": evidence.take(pa.array(first, pa.int64())),
    }

    # New sources: bright unmatched transits grouped on the sky.
    i = np.flatnonzero(_new_source_evidence(d, config))
    u = geometry.unit_from_radec(d["ra"][i], d["dec"][i]).reshape(-1, 3)
    index = crossmatch.build_index(u, config.cluster_radius_mas)
    label_sorted = np.empty(len(i), dtype=np.int64)
    chord = 2.0 * math.sin(0.5 * config.cluster_radius_mas * geometry.MAS_RAD)
    _k._friends_of_friends(index.u_sorted, index.keys_sorted, index.inv_h, index.offset, index.n, chord * chord,
                           label_sorted)
    label = np.empty(len(i), dtype=np.int64)
    label[index.order] = index.order[label_sorted]  # a group's key: one of its members' rows (any will do)
    with np.errstate(divide="ignore"):
        snr2 = (_MAG_PER_SNR / g_err[i]) ** 2
    s = _groups(label, obmt[i], fov[i], tid[i], config,
                {"g": g[i], "snr2": snr2, "ux": u[:, 0], "uy": u[:, 1], "uz": u[:, 2]})
    u_mean = np.stack([s["ux"], s["uy"], s["uz"]], axis=-1)
    new_ra, new_dec = geometry.radec_from_unit(u_mean / np.linalg.norm(u_mean, axis=-1, keepdims=True))
    m = len(s["key"])
    new = {
        "alert_id": s["alert_id"],
        "kind": np.full(m, NEW_SOURCE),
        "source_id": pa.nulls(m, pa.int64()),
        "ra_deg": new_ra.reshape(-1),
        "dec_deg": new_dec.reshape(-1),
        "g_mag": s["g"] / np.maximum(s["n"], 1),
        "delta_g_mag": pa.nulls(m, pa.float32()),
        "significance_sigma": np.sqrt(s["snr2"]),
        "n_transits": s["n"],
        "first_obmt_ns": s["first_obmt_ns"],
        "last_obmt_ns": s["last_obmt_ns"],
        "transit_ids": s["transit_ids"],
    }

    tables = [_table(part) for part in (old, new)]
    result = pa.concat_tables(tables)
    return result.take(pa.array(np.argsort(result["alert_id"].to_numpy(), kind="stable")))


def _table(cols: dict) -> pa.Table:
    typed = {}
    for f in schemas.ALERTS:
        value = cols[f.name]
        typed[f.name] = value if isinstance(value, pa.Array) else pa.array(np.asarray(value), f.type)
    return pa.table(typed, schema=schemas.ALERTS)
