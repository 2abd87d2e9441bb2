"""The telemetry ICD (:mod:`pipeline.icd`) as an XTCE document, for decoders and ground tools outside this project.

XTCE is OMG's XML Telemetric and Command Exchange, version 1.2 (https://www.omg.org/spec/XTCE/1.2/; its
schema's namespace is :data:`XTCE_NS`). The document is generated from the contract's
own definitions, so it cannot drift from them: one ``SpaceSystem`` with

- the CCSDS packet primary header (CCSDS 133.0-B-2) and the secondary header's OBMT in an abstract base container
  ``CCSDSPacket``;
- one container per APID inheriting it, with a ``RestrictionCriteria`` on the APID, holding the APID's payload
  fields (:data:`pipeline.icd.PAYLOADS`, in packet order, with their units and meanings from
  :data:`pipeline.icd.FIELD_DOCS`; housekeeping as one parameter per :data:`pipeline.icd.HK_CHANNELS`) and the
  packet error control, whose encoding names its CRC (polynomial, initial register; no reflection, no final XOR);
- a window (an array field) as an ``ArrayParameterType`` with fixed dimensions: each window class has its own
  APID and a fixed length. ``flat=True`` writes each array element as its own parameter instead
  (``af_adu_3_17_11`` is ``af_adu[3, 17, 11]``; C order, the last index fastest, as XTCE's ``DimensionList``),
  for decoders without array support (space_packet_parser 6).

Written with the standard library alone; byte for byte the same for the same ICD (no date in the header, whose
version is a digest of the layout).
"""

from __future__ import annotations

import hashlib
import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import numpy as np

from pipeline import icd

#: XTCE 1.2's namespace and schema (https://www.omg.org/spec/XTCE/20180204/SpaceSystem.xsd).
XTCE_NS = "http://www.omg.org/spec/XTCE/20180204"
XTCE_XSD = "https://www.omg.org/spec/XTCE/20180204/SpaceSystem.xsd"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
SPACE_SYSTEM = "gaiasim"
#: The abstract base container (the name space_packet_parser starts from by default).
BASE_CONTAINER = "CCSDSPacket"

#: The parameter the APID containers' restriction criteria compare.
APID_PARAMETER = "ccsds_apid"
#: The primary header's bit fields, packed into the ICD's words ``word0`` and ``word1`` (CCSDS 133.0-B-2,
#: packet primary header): (parameter, bits, description). The APID and sequence count widths are the ICD's own.
HEADER_BITS: dict[str, tuple[tuple[str, int, str], ...]] = {
    "word0": (
        ("ccsds_version", 3, "packet version number: 0 (CCSDS 133.0-B-2's version 1 packets)"),
        ("ccsds_type", 1, "packet type: 0 = telemetry"),
        ("ccsds_sec_hdr_flag", 1, "secondary header flag: 1 (the OBMT follows the primary header)"),
        (APID_PARAMETER, icd.MAX_APID.bit_length(), "application process identifier: the packet's layout"),
    ),
    "word1": (
        ("ccsds_seq_flags", icd.SEQ_FLAGS_UNSEGMENTED.bit_length(), "sequence flags: 0b11, unsegmented"),
        ("ccsds_seq_count", (icd.SEQ_COUNT_MODULO - 1).bit_length(),
         f"packet sequence count, per APID, modulo {icd.SEQ_COUNT_MODULO}"),
    ),
}
_DATA_LENGTH_DOC = "packet data length: octets after the primary header - 1"
#: Separator of a packet's name and its field's in a parameter name (XTCE names may hold no '.', '/' or '[').
SEP = "__"


@dataclass(frozen=True)
class Field:
    """One parameter of the description: an integer or float, or a fixed-size array of them."""

    name: str  # unique in the SpaceSystem
    encoding: str  # XTCE: unsigned, twosComplement (IntegerDataEncoding) or IEEE754 (FloatDataEncoding)
    bits: int  # of one element
    unit: str  # "" for none
    description: str
    shape: tuple[int, ...] = ()  # () for a scalar
    crc: bool = False  # the packet error control

    @property
    def size_bits(self) -> int:
        return self.bits * math.prod(self.shape)


@dataclass(frozen=True)
class Packet:
    apid: int
    name: str  # the contract's constant without APID_, e.g. STAR_WC0
    octets: int
    fields: tuple[Field, ...]  # payload fields, then the packet error control


def packet_names() -> dict[int, str]:
    """Name of each APID of the ICD, from its constant in pipeline.icd (APID_STAR_WC0 -> STAR_WC0)."""
    names = {value: key.removeprefix("APID_") for key, value in vars(icd).items()
             if key.startswith("APID_") and isinstance(value, int)}
    missing = sorted(set(icd.PAYLOADS) - set(names))
    if missing:
        raise ValueError(f"APIDs {missing} of pipeline.icd.PAYLOADS have no APID_* constant to name them")
    return {apid: names[apid] for apid in sorted(icd.PAYLOADS)}


def _scalar(name: str, dtype: np.dtype, doc: icd.FieldDoc, shape: tuple[int, ...] = (), crc: bool = False) -> Field:
    if dtype.itemsize > 1 and dtype.byteorder != ">":
        raise ValueError(f"ICD field {name} is {dtype.str}: the ICD is big-endian throughout")
    encoding = {"u": "unsigned", "i": "twosComplement", "f": "IEEE754"}.get(dtype.kind)
    if encoding is None:
        raise ValueError(f"ICD field {name} has dtype {dtype.str}, which has no XTCE encoding here")
    return Field(name, encoding, dtype.itemsize * 8, doc.unit, doc.description, shape, crc)


def _doc(field: str) -> icd.FieldDoc:
    if field not in icd.FIELD_DOCS:
        raise ValueError(f"ICD field {field} has no unit and description: add it to pipeline.icd.FIELD_DOCS")
    return icd.FIELD_DOCS[field]


def _payload_fields(apid: int, packet: str) -> list[Field]:
    payload = icd.PAYLOADS[apid]
    fields: list[Field] = []
    at = 0
    for name in payload.names:
        sub, offset = payload.fields[name][:2]
        if offset != at:
            raise ValueError(f"APID {apid} field {name} starts at octet {offset}, not {at}: padding in the payload")
        at += sub.itemsize
        if apid == icd.APID_HK and name == "value":
            if sub.shape != (len(icd.HK_CHANNELS),):
                raise ValueError(f"HK value has shape {sub.shape}, but the ICD names {len(icd.HK_CHANNELS)} channels")
            fields += [_scalar(f"{packet}{SEP}{ch.name}", sub.base, icd.FieldDoc(ch.unit, ch.description))
                       for ch in icd.HK_CHANNELS]
        else:
            fields.append(_scalar(f"{packet}{SEP}{name}", sub.base, _doc(name), sub.shape))
    return fields


def header_fields() -> tuple[Field, ...]:
    """The base container's parameters: primary header bit fields, data length and OBMT."""
    dtype = icd.packet_dtype(icd.APID_HK)  # every APID's header is the same (checked in packets())
    fields: list[Field] = []
    for name in dtype.names[:dtype.names.index("payload")]:
        sub = dtype.fields[name][0]
        if name in HEADER_BITS:
            parts = HEADER_BITS[name]
            if sum(bits for _, bits, _ in parts) != sub.itemsize * 8:
                raise ValueError(f"the header bit fields of {name} do not fill its {sub.itemsize * 8} bits")
            fields += [Field(part, "unsigned", bits, "", doc) for part, bits, doc in parts]
        elif name == "data_length":
            fields.append(_scalar("ccsds_data_length", sub, icd.FieldDoc("", _DATA_LENGTH_DOC)))
        else:
            fields.append(_scalar(name, sub, _doc(name)))
    if sum(f.size_bits for f in fields) != 8 * (icd.PRIMARY_HEADER_OCTETS + icd.SECONDARY_HEADER_OCTETS):
        raise ValueError("the header fields do not fill the primary and secondary headers")
    return tuple(fields)


def packets() -> tuple[Packet, ...]:
    """Every APID of the ICD: its payload fields and packet error control, in packet order."""
    header = icd.packet_dtype(icd.APID_HK)
    head_names = header.names[:header.names.index("payload")]
    crc_dtype = header.fields["crc"][0]
    out = []
    for apid, name in packet_names().items():
        dtype = icd.packet_dtype(apid)
        if dtype.names != header.names or any(dtype.fields[n][:2] != header.fields[n][:2] for n in head_names):
            raise ValueError(f"APID {apid} has a different header from the others; the base container cannot hold it")
        fields = [*_payload_fields(apid, name), _scalar("crc", crc_dtype, _doc("crc"), crc=True)]
        head_bits = 8 * (icd.PRIMARY_HEADER_OCTETS + icd.SECONDARY_HEADER_OCTETS)
        if head_bits + sum(f.size_bits for f in fields) != 8 * dtype.itemsize:
            raise ValueError(f"the fields of APID {apid} do not fill its {dtype.itemsize} octets")
        out.append(Packet(apid, name, dtype.itemsize, tuple(fields)))
    return tuple(out)


def _flatten(field: Field) -> list[Field]:
    """An array field as one scalar field per element, C order (XTCE DimensionList order)."""
    if not field.shape:
        return [field]
    return [Field(f"{field.name}_{'_'.join(map(str, index))}", field.encoding, field.bits, field.unit,
                  f"{field.description} [{', '.join(map(str, index))}]")
            for index in np.ndindex(*field.shape)]


def _type_name(field: Field) -> str:
    kind = {"unsigned": "uint", "twosComplement": "int", "IEEE754": "float"}[field.encoding]
    name = f"{kind}{field.bits}"
    if field.unit:
        name += "_" + field.unit.replace("/", "_per_").replace(" ", "_")
    if field.crc:
        name += "_crc16"
    return name


def _array_type_name(field: Field) -> str:
    return f"{_type_name(field)}_{'x'.join(map(str, field.shape))}"


def _el(parent: ET.Element, tag: str, text: str | None = None, **attrib: str) -> ET.Element:
    element = ET.SubElement(parent, f"{{{XTCE_NS}}}{tag}", attrib)
    if text is not None:
        element.text = text
    return element


def _scalar_type(parent: ET.Element, field: Field) -> None:
    if field.encoding == "IEEE754":
        ptype = _el(parent, "FloatParameterType", name=_type_name(field), sizeInBits=str(field.bits))
    else:
        ptype = _el(parent, "IntegerParameterType", name=_type_name(field), signed=str(field.encoding != "unsigned")
                    .lower(), sizeInBits=str(field.bits))
    if field.unit:
        _el(_el(ptype, "UnitSet"), "Unit", field.unit)
    if field.encoding == "IEEE754":
        _el(ptype, "FloatDataEncoding", encoding="IEEE754", sizeInBits=str(field.bits))
        return
    encoding = _el(ptype, "IntegerDataEncoding", encoding=field.encoding, sizeInBits=str(field.bits))
    if field.crc:
        crc = _el(_el(encoding, "ErrorDetectCorrect"), "CRC", width=str(field.bits), reflectData="false",
                  reflectRemainder="false")
        digits = field.bits // 4
        _el(crc, "Polynomial", f"{icd.CRC_POLYNOMIAL:0{digits}X}")
        _el(crc, "InitRemainder", f"{icd.CRC_INIT:0{digits}X}")
        _el(crc, "FinalXOR", "0" * digits)


def _array_type(parent: ET.Element, field: Field) -> None:
    ptype = _el(parent, "ArrayParameterType", name=_array_type_name(field), arrayTypeRef=_type_name(field))
    dims = _el(ptype, "DimensionList")
    for size in field.shape:
        dim = _el(dims, "Dimension")
        _el(_el(dim, "StartingIndex"), "FixedValue", "0")
        _el(_el(dim, "EndingIndex"), "FixedValue", str(size - 1))


def containers(flat: bool = False) -> dict[str, list[Field]]:
    """The entries of each container: the base container's header fields, then each APID's fields
    (``flat``: arrays as one field per element)."""
    entries = {BASE_CONTAINER: list(header_fields())}
    for packet in packets():
        entries[packet.name] = [g for f in packet.fields for g in (_flatten(f) if flat else [f])]
    return entries


def parameters(flat: bool = False) -> list[Field]:
    """Every parameter once (the packet error control is in every APID's container), in packet order."""
    unique: dict[str, Field] = {}
    for fields in containers(flat).values():
        for field in fields:
            if unique.setdefault(field.name, field) != field:
                raise ValueError(f"two different ICD fields are both named {field.name}")
    return list(unique.values())


def layout_digest() -> str:
    """SHA-256 (12 hex digits) of the described layout: the header's version attribute."""
    h = hashlib.sha256()
    for field in header_fields():
        h.update(repr(field).encode())
    for packet in packets():
        h.update(repr(packet).encode())
    return h.hexdigest()[:12]


def build(flat: bool = False) -> ET.ElementTree:
    """The ICD as an XTCE 1.2 document (``flat``: arrays as one parameter per element)."""
    ET.register_namespace("xtce", XTCE_NS)
    ET.register_namespace("xsi", XSI_NS)
    packet_list = packets()
    root = ET.Element(f"{{{XTCE_NS}}}SpaceSystem", {
        "name": SPACE_SYSTEM,
        "shortDescription": "gaiasim telemetry ICD (pipeline/icd.py): CCSDS space packets, big-endian",
        f"{{{XSI_NS}}}schemaLocation": f"{XTCE_NS} {XTCE_XSD}",
    })
    _el(root, "LongDescription", (icd.__doc__ or "").strip())
    _el(root, "Header", version=f"icd-{layout_digest()}{'-flat' if flat else ''}", validationStatus="Working")
    tm = _el(root, "TelemetryMetaData")
    type_set, parameter_set, container_set = (_el(tm, tag) for tag in ("ParameterTypeSet", "ParameterSet",
                                                                         "ContainerSet"))
    entries = containers(flat)
    scalar_types: dict[str, Field] = {}
    array_types: dict[str, Field] = {}
    for field in parameters(flat):
        scalar_types.setdefault(_type_name(field), field)
        if field.shape:
            array_types.setdefault(_array_type_name(field), field)
    for field in scalar_types.values():
        _scalar_type(type_set, field)
    for field in array_types.values():
        _array_type(type_set, field)
    for field in parameters(flat):
        ref = _array_type_name(field) if field.shape else _type_name(field)
        _el(parameter_set, "Parameter", name=field.name, parameterTypeRef=ref, shortDescription=field.description)

    base = _el(container_set, "SequenceContainer", name=BASE_CONTAINER, abstract="true",
               shortDescription="CCSDS space packet: primary header and the secondary header's OBMT")
    entry_list = _el(base, "EntryList")
    for field in entries[BASE_CONTAINER]:
        _el(entry_list, "ParameterRefEntry", parameterRef=field.name)
    periods = {apid: f"one every {period / 1e9:g} s" for apid, period in icd.PERIOD_NS.items()}
    for packet in packet_list:
        container = _el(container_set, "SequenceContainer", name=packet.name,
                        shortDescription=f"APID {packet.apid}, {packet.octets} octets, "
                                         f"{periods.get(packet.apid, 'one per transit')}")
        entry_list = _el(container, "EntryList")
        for field in entries[packet.name]:
            _el(entry_list, "ParameterRefEntry", parameterRef=field.name)
        criteria = _el(_el(container, "BaseContainer", containerRef=BASE_CONTAINER), "RestrictionCriteria")
        _el(criteria, "Comparison", parameterRef=APID_PARAMETER, value=str(packet.apid))
    ET.indent(root)
    return ET.ElementTree(root)


def _short(field: Field) -> str:
    kind = {"unsigned": "u", "twosComplement": "i", "IEEE754": "f"}[field.encoding]
    shape = f"[{','.join(map(str, field.shape))}]" if field.shape else ""
    name = field.name.split(SEP, 1)[-1]
    return f"{name} {kind}{field.bits}{shape}" + (f" {field.unit}" if field.unit else "")


def summary_rows() -> list[tuple[int, str, int, str, str]]:
    """(APID, packet, octets, rate, payload fields) of every APID: ``gaiasim icd``'s table."""
    return [(p.apid, p.name, p.octets,
             f"{1e9 / icd.PERIOD_NS[p.apid]:g} Hz" if p.apid in icd.PERIOD_NS else "per transit",
             ", ".join(_short(f) for f in p.fields if not f.crc)) for p in packets()]


def to_bytes(flat: bool = False) -> bytes:
    """The XTCE document as UTF-8 XML with its declaration."""
    return ET.tostring(build(flat).getroot(), encoding="utf-8", xml_declaration=True) + b"\n"
