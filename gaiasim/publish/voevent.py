"""Alert packets as VOEvent 2.0 XML (IVOA Recommendation 2011-07-11, https://www.ivoa.net/documents/VOEvent/),
the format in which Gaia Science Alerts published Gaia's photometric alerts (http://gsaweb.ast.cam.ac.uk/alerts;
their packets, e.g. Gaia16aac, set ``ObservatoryLocation id="GAIA"``).

One XML document per alert (:func:`document`), written as ``<alert_id>.xml`` (:func:`write_all`):

- ``ivorn``: ``ivo://gaiasim/alerts#<alert_id>``; ``role``: ``test`` by default (the data are simulated; the
  standard's roles are observation, prediction, utility, test);
- Who: the author's IVORN (``ivo://gaiasim``), the packet's date;
- What: Params ``alert_id`` and ``source_id`` (strings: 64-bit ids exact), ``class``, ``G``, ``G_err``,
  ``dG``, ``significance``, ``n_transits``, the evidence's OBMT and UTC span, and the light curve as a Table;
- WhereWhen: ``UTC-ICRS-TOPO`` (the observatory: Gaia), the first evidence transit's time in UTC, the position
  in degrees with its error radius (``pos_err_mas`` in degrees; ``NaN`` when unknown, a valid xs:float);
- How: who raised the alert (the run's pipeline_version); Why: the class and what it means for this alert.

docs/alerts.md gives the mapping in full. Float values are written as the shortest text that gives back the
Avro packet's value (float32 fields as float32), so a VOEvent and the Avro packet of an alert agree exactly.
"""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from gaiasim.publish.utc import utc_iso
from pipeline import io

NS = "http://www.ivoa.net/xml/VOEvent/v2.0"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
SCHEMA_LOCATION = f"{NS} http://www.ivoa.net/xml/VOEvent/VOEvent-v2.0.xsd"
#: The standard's roles (VOEvent 2.0 section 3.1.1); simulated alerts are ``test``.
ROLES = ("observation", "prediction", "utility", "test")
AUTHOR_IVORN = "ivo://gaiasim"
IVORN_BASE = f"{AUTHOR_IVORN}/alerts"
#: Time frame, space frame and reference position of WhereWhen (VOEvent 2.0 section 3.4.1): UTC, ICRS, at
#: the observatory (TOPO; ``ObservatoryLocation id="GAIA"`` names it, as Gaia Science Alerts did).
COORD_SYSTEM = "UTC-ICRS-TOPO"
OBSERVATORY = "GAIA"
_MAS_PER_DEG = 3.6e6
_WHY = {
    "brightening": "Known source {source_id} brighter than its catalogue G by {dg} mag",
    "fading": "Known source {source_id} fainter than its catalogue G by {dg} mag",
    "new_source": "Source with no catalogue counterpart, G = {g} mag",
}

ET.register_namespace("voe", NS)
ET.register_namespace("xsi", XSI)


def ivorn(alert_id: int) -> str:
    return f"{IVORN_BASE}#{alert_id}"


def _f32(x: float) -> str:
    return "NaN" if x is None or x != x else str(np.float32(x))


def _f64(x: float) -> str:
    return "NaN" if x is None or x != x else repr(float(x))


def _param(parent: ET.Element, name: str, value: str, ucd: str, data_type: str = "string", unit: str = "",
           doc: str = "") -> None:
    attrs = {"name": name, "ucd": ucd, "dataType": data_type, "value": value}
    if unit:
        attrs["unit"] = unit
    param = ET.SubElement(parent, "Param", attrs)
    if doc:
        ET.SubElement(param, "Description").text = doc


def _text(parent: ET.Element, tag: str, text: str, attrs: dict | None = None) -> ET.Element:
    e = ET.SubElement(parent, tag, attrs or {})
    e.text = text
    return e


#: The light-curve Table's columns: name, dataType, ucd, unit, and how a history point gives its cell.
_CURVE = (
    ("transit_id", "string", "meta.id", "", lambda p, t: str(p["transit_id"])),
    ("obmt_ns", "string", "time.epoch", "ns", lambda p, t: str(p["obmt_ns"])),
    ("utc", "string", "time.epoch", "", lambda p, t: t),
    ("fov", "int", "instr.setup", "", lambda p, t: str(p["fov"])),
    ("G", "float", "phot.mag", "mag", lambda p, t: _opt(p["g_mag"])),
    ("G_err", "float", "stat.error;phot.mag", "mag", lambda p, t: _opt(p["g_mag_err"])),
    ("BP", "float", "phot.mag", "mag", lambda p, t: _opt(p["bp_mag"])),
    ("BP_err", "float", "stat.error;phot.mag", "mag", lambda p, t: _opt(p["bp_mag_err"])),
    ("RP", "float", "phot.mag", "mag", lambda p, t: _opt(p["rp_mag"])),
    ("RP_err", "float", "stat.error;phot.mag", "mag", lambda p, t: _opt(p["rp_mag_err"])),
    ("evidence", "int", "meta.code", "", lambda p, t: "1" if p["evidence"] else "0"),
)


def _opt(x: float | None) -> str:
    return "" if x is None else _f32(x)


def document(packet: dict, role: str = "test", authored: dt.datetime | None = None) -> ET.Element:
    """The VOEvent of one alert packet (:mod:`gaiasim.publish.packets`); ``authored``: Who/Date (UTC,
    default now)."""
    if role not in ROLES:
        raise ValueError(f"role {role!r}: VOEvent 2.0 knows {', '.join(ROLES)}")
    authored = authored or dt.datetime.now(dt.UTC)
    root = ET.Element(f"{{{NS}}}VOEvent", {"ivorn": ivorn(packet["alert_id"]), "role": role, "version": "2.0",
                                           f"{{{XSI}}}schemaLocation": SCHEMA_LOCATION})
    who = ET.SubElement(root, "Who")
    _text(who, "AuthorIVORN", AUTHOR_IVORN)
    _text(who, "Date", authored.astimezone(dt.UTC).replace(tzinfo=None).isoformat(timespec="seconds"))
    author = ET.SubElement(who, "Author")
    _text(author, "shortName", "gaiasim")
    _text(author, "title", packet["publisher"])

    kind, dg = packet["kind"], packet["delta_g_mag"]
    what = ET.SubElement(root, "What")
    _text(what, "Description", f"gaiasim science alert {packet['alert_id']}: {kind}, G = {_f32(packet['g_mag'])} mag")
    _param(what, "alert_id", str(packet["alert_id"]), "meta.id", doc="smallest transit_id of the evidence")
    _param(what, "class", kind, "src.class", doc="brightening, fading or new_source")
    if packet["source_id"] is not None:
        _param(what, "source_id", str(packet["source_id"]), "meta.id.cross", doc="the catalogue source that changed")
    phot = ET.SubElement(what, "Group", {"name": "alert-magnitude"})
    _param(phot, "G", _f32(packet["g_mag"]), "phot.mag", "float", "mag", "mean G of the evidence transits")
    if packet["g_mag_err"] is not None:
        _param(phot, "G_err", _f32(packet["g_mag_err"]), "stat.error;phot.mag", "float", "mag")
    if dg is not None:
        _param(phot, "dG", _f32(dg), "phot.mag;arith.diff", "float", "mag", "G - catalogue G (< 0: brighter)")
    _param(what, "significance", _f32(packet["significance_sigma"]), "stat.snr", "float", "",
           "combined significance of the evidence, in sigma")
    _param(what, "n_transits", str(packet["n_transits"]), "meta.number", "int", doc="number of evidence transits")
    _param(what, "first_obmt_ns", str(packet["first_obmt_ns"]), "time.start", unit="ns",
           doc="on-board mission time of the first evidence transit")
    _param(what, "last_obmt_ns", str(packet["last_obmt_ns"]), "time.end", unit="ns",
           doc="on-board mission time of the last evidence transit")
    _param(what, "last_utc", packet["last_utc"], "time.end", doc="UTC of the last evidence transit")
    _param(what, "transit_ids", " ".join(map(str, packet["transit_ids"])), "meta.id", doc="the evidence transits")
    curve = ET.SubElement(what, "Table", {"name": "light_curve"})
    _text(curve, "Description", "the source's transits in the run (a new source: its evidence), in time order")
    for name, data_type, ucd, unit, _ in _CURVE:
        ET.SubElement(curve, "Field", {"name": name, "dataType": data_type, "ucd": ucd, **({"unit": unit} if unit
                                                                                              else {})})
    data = ET.SubElement(curve, "Data")
    times = utc_iso([p["obmt_ns"] for p in packet["history"]])
    for point, utc in zip(packet["history"], times, strict=True):
        tr = ET.SubElement(data, "TR")
        for *_, cell in _CURVE:
            _text(tr, "TD", cell(point, utc))

    where = ET.SubElement(ET.SubElement(root, "WhereWhen"), "ObsDataLocation")
    ET.SubElement(where, "ObservatoryLocation", {"id": OBSERVATORY})
    location = ET.SubElement(where, "ObservationLocation")
    ET.SubElement(location, "AstroCoordSystem", {"id": COORD_SYSTEM})
    coords = ET.SubElement(location, "AstroCoords", {"coord_system_id": COORD_SYSTEM})
    _text(ET.SubElement(ET.SubElement(coords, "Time", {"unit": "s"}), "TimeInstant"), "ISOTime", packet["first_utc"])
    pos = ET.SubElement(coords, "Position2D", {"unit": "deg"})
    _text(pos, "Name1", "RA")
    _text(pos, "Name2", "Dec")
    value = ET.SubElement(pos, "Value2")
    _text(value, "C1", _f64(packet["ra_deg"]))
    _text(value, "C2", _f64(packet["dec_deg"]))
    err = packet["pos_err_mas"]
    _text(pos, "Error2Radius", "NaN" if err is None else _f64(err / _MAS_PER_DEG))

    how = ET.SubElement(root, "How")
    _text(how, "Description", "Simulated Gaia-like transits (gaiasim); alert raised from the run's transits by the "
                              f"pipeline {packet['pipeline_version']}")
    why = ET.SubElement(root, "Why")
    inference = ET.SubElement(why, "Inference")
    if packet["source_id"] is not None:
        _text(inference, "Name", str(packet["source_id"]))
    _text(inference, "Concept", kind)
    _text(inference, "Description", _WHY[kind].format(source_id=packet["source_id"], g=_f32(packet["g_mag"]),
                                                      dg=_f32(abs(dg)) if dg is not None else "")
          + f" ({_f32(packet['significance_sigma'])} sigma, {packet['n_transits']} transits)")
    return root


def to_bytes(packet: dict, role: str = "test", authored: dt.datetime | None = None) -> bytes:
    """The VOEvent of ``packet`` as a UTF-8 XML document."""
    tree = ET.ElementTree(document(packet, role, authored))
    ET.indent(tree)
    return ET.tostring(tree.getroot(), encoding="UTF-8", xml_declaration=True) + b"\n"


def write_all(packets: list[dict], folder: Path, role: str = "test", authored: dt.datetime | None = None) -> list[Path]:
    """``<folder>/<alert_id>.xml`` for each packet (atomically); the paths written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    authored = authored or dt.datetime.now(dt.UTC)
    paths = []
    for p in packets:
        paths.append(folder / f"{p['alert_id']}.xml")
        io.write_bytes(to_bytes(p, role, authored), paths[-1])
    return paths
