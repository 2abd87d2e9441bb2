"""The XTCE description of the ICD (gaiasim.xtce, ``gaiasim icd --xtce``), checked by an independent decoder.

space_packet_parser (a CCSDS decoder driven by XTCE alone) reads the generated document and decodes every
packet of a generated day, more than 10^5 of them: each field of each packet must equal what the pipeline's
own decoder (pipeline.icd.scan_stream and decode_packets) gives. A document with one field a bit too wide, a
float read as an integer or a container restricted to the wrong APID must fail that comparison. The array
form (which space_packet_parser 6 cannot read) must be schema-valid and describe the very bits of the flat
form it decoded; the CRC the document names must be the one in the packets.
"""

from __future__ import annotations

import copy
import io
import itertools
import json
import math
import re
import warnings
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import space_packet_parser as spp
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from gaiasim import xtce
from gaiasim.cli import main
from gaiasim.sim.generate import generate
from gaiasim.spec import make_spec
from pipeline import icd

#: A nominal day a little larger than the demo day (98,304 packets): 101,131 packets, of every APID.
DAY_SPEC = make_spec(name="xtce", seed=11, scale=8e-5)
MIN_PACKETS = 100_000
#: The container of each APID (docs/xtce.md): the name of its constant in pipeline/icd.py without APID_.
CONTAINERS = {icd.APID_HK: "HK", icd.APID_ATTITUDE: "ATTITUDE", icd.APID_STAR_WC0: "STAR_WC0",
              icd.APID_STAR_WC1: "STAR_WC1", icd.APID_STAR_WC2: "STAR_WC2"}
NS = {"x": xtce.XTCE_NS}


@pytest.fixture(scope="module")
def tm_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("xtce") / "dataset"
    generate(DAY_SPEC, root, None)
    return sorted((root / "tm").glob("*.tm"))


@pytest.fixture(scope="module")
def flat_document() -> bytes:
    return xtce.to_bytes(flat=True)


@pytest.fixture(scope="module")
def decoder(flat_document: bytes) -> spp.XtcePacketDefinition:
    return spp.XtcePacketDefinition.from_xtce(io.BytesIO(flat_document))


# --- the pipeline's decoder, flattened field by field in packet order ---------------------------------


def expected_packets(records: np.ndarray, apid: int) -> tuple[list[str], list[list]]:
    """(parameter names, values of each packet) of ``records`` (pipeline.icd.decode_packets), in packet
    order, arrays in C order: the primary header's bit fields taken apart here (CCSDS 133.0-B-2)."""
    name = CONTAINERS[apid]
    w0, w1 = records["word0"].astype(np.int64), records["word1"].astype(np.int64)
    names = ["ccsds_version", "ccsds_type", "ccsds_sec_hdr_flag", "ccsds_apid", "ccsds_seq_flags",
             "ccsds_seq_count", "ccsds_data_length", "obmt_ns"]
    columns = [w0 >> 13, (w0 >> 12) & 1, (w0 >> 11) & 1, w0 & 0x7FF, w1 >> 14, w1 & 0x3FFF,
               records["data_length"], records["obmt_ns"]]
    columns = [np.asarray(c).reshape(-1, 1) for c in columns]
    payload = records["payload"]
    for field in payload.dtype.names:
        values = payload[field].reshape(len(records), -1)
        shape = payload.dtype.fields[field][0].shape
        if apid == icd.APID_HK:
            names += [f"HK__{channel.name}" for channel in icd.HK_CHANNELS]
        elif not shape:
            names.append(f"{name}__{field}")
        else:
            names += [f"{name}__{field}_{'_'.join(map(str, index))}" for index in np.ndindex(*shape)]
        columns.append(values)
    names.append("crc")
    columns.append(records["crc"].reshape(-1, 1))
    rows = [list(itertools.chain.from_iterable(parts)) for parts in zip(*(c.tolist() for c in columns), strict=True)]
    return names, rows


def _same(a: object, b: object) -> bool:
    return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))


@dataclass
class Comparison:
    packets: Counter[int]  # packets compared, by APID
    problems: list[str]  # the differences found


def compare(definition: spp.XtcePacketDefinition, data: bytes, label: str, max_problems: int = 10) -> Comparison:
    """Decode ``data`` (a TM stream) with space_packet_parser and with the pipeline, and compare every field
    of every packet (stopping at ``max_problems`` differences)."""
    buf = np.frombuffer(data, np.uint8)
    index = icd.scan_stream(buf)
    quarantined = int((index["status"] != icd.STATUS_OK).sum())
    problems = [f"{label}: the pipeline quarantines {quarantined} packets"] if quarantined else []
    expected = {int(apid): expected_packets(icd.decode_packets(buf, index, int(apid)), int(apid))
                for apid in np.unique(index["apid"])}
    taken: Counter[int] = Counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for row, raw in itertools.zip_longest(index, spp.ccsds_generator(data)):
            if len(problems) >= max_problems:
                break
            if row is None or raw is None:
                problems.append(f"{label}: space_packet_parser and the pipeline split the stream differently")
                break
            apid, where = int(row["apid"]), f"{label} packet {taken.total()} (APID {int(row['apid'])})"
            names, rows = expected[apid]
            values = rows[taken[apid]]
            taken[apid] += 1
            try:
                packet = definition.parse_bytes(raw)
            except Exception as exc:  # any failure of the other decoder is a difference
                problems.append(f"{where}: {type(exc).__name__}: {exc}")
                continue
            got_names, got = list(packet.keys()), list(packet.values())
            if got_names != names or len(got) != len(values) or not all(map(_same, got, values)):
                wrong = [f"{k}={g!r} not {e!r}" for k, g, e in zip(names, got, values, strict=False) if not _same(g, e)]
                problems.append(f"{where}: names {'differ' if got_names != names else 'agree'}; {len(wrong)} "
                                f"values differ, first {wrong[:2]}")
        problems += [f"{label}: {w.message}" for w in caught][: max(0, max_problems - len(problems))]
    return Comparison(taken, problems)


# --- the independent decoder agrees with the pipeline ------------------------------------------------


# Seconds compiled; interpreted (nox -s cover) generating and scanning the day takes minutes, and the
# sample and hypothesis tests below run the same comparison.
@pytest.mark.compiled
def test_space_packet_parser_decodes_a_day_as_the_pipeline_does(tm_files, decoder):
    total: Counter[int] = Counter()
    problems: list[str] = []
    for path in tm_files:
        found = compare(decoder, path.read_bytes(), path.name)
        total.update(found.packets)
        problems += found.problems
    assert not problems, "\n".join(problems)
    assert total.total() >= MIN_PACKETS, f"only {total.total()} packets compared"
    assert set(total) == set(icd.PAYLOADS), f"the day lacks APIDs {set(icd.PAYLOADS) - set(total)}"


@given(apid=st.sampled_from(sorted(icd.PAYLOADS)), seed=st.integers(0, 2**32 - 1), n=st.integers(1, 3),
       seq=st.integers(0, 2**20), obmt_ns=st.integers(0, 2**64 - 1))
def test_random_packets_decode_alike(decoder, apid, seed, n, seq, obmt_ns):
    # Any payload octets, whatever they mean (a float may be a NaN, a transit_id out of range): the layout alone.
    octets = np.random.default_rng(seed).bytes(n * icd.PAYLOADS[apid].itemsize)
    payload = np.frombuffer(octets, icd.PAYLOADS[apid])
    rows = icd.encode_packets(apid, seq + np.arange(n), np.full(n, obmt_ns, np.uint64), payload)
    found = compare(decoder, rows.tobytes(), f"APID {apid}")
    assert found.packets == {apid: n} and not found.problems, "\n".join(found.problems)


# --- a wrong description must fail the comparison -----------------------------------------------------


def _mutate(document: bytes, how: str) -> bytes:
    root = ET.fromstring(document)
    types = root.find("x:TelemetryMetaData/x:ParameterTypeSet", NS)
    parameter = {p.get("name"): p for p in root.iterfind(".//x:ParameterSet/x:Parameter", NS)}
    if how == "one bit too wide":  # STAR_WC2's gate read as 9 bits
        wide = copy.deepcopy(types.find("x:IntegerParameterType[@name='uint8']", NS))
        wide.set("name", "uint9")
        wide.set("sizeInBits", "9")
        wide.find("x:IntegerDataEncoding", NS).set("sizeInBits", "9")
        types.append(wide)
        parameter["STAR_WC2__gate"].set("parameterTypeRef", "uint9")
    elif how == "float read as an integer":  # same width, wrong encoding
        parameter["HK__bus_voltage_v"].set("parameterTypeRef", "uint32")
        integer = copy.deepcopy(types.find("x:IntegerParameterType[@name='uint16']", NS))
        integer.set("name", "uint32")
        integer.set("sizeInBits", "32")
        integer.find("x:IntegerDataEncoding", NS).set("sizeInBits", "32")
        types.append(integer)
    elif how == "wrong APID":  # STAR_WC1's container claims STAR_WC2's APID
        root.find(".//x:SequenceContainer[@name='STAR_WC1']//x:Comparison", NS).set(
            "value", str(icd.APID_STAR_WC2))
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


SAMPLE_PER_APID = 20


@pytest.fixture(scope="module")
def sample() -> bytes:
    """A stream of packets of every APID with random payload octets (seeded)."""
    rng = np.random.default_rng(2016)
    n = SAMPLE_PER_APID
    return b"".join(icd.encode_packets(apid, np.arange(n), rng.integers(0, 2**63, n).astype(np.uint64),
                                       np.frombuffer(rng.bytes(n * payload.itemsize), payload)).tobytes()
                    for apid, payload in icd.PAYLOADS.items())


@pytest.mark.parametrize("how", ["one bit too wide", "float read as an integer", "wrong APID"])
def test_a_wrong_description_fails_the_comparison(sample, flat_document, decoder, how):
    mutant = spp.XtcePacketDefinition.from_xtce(io.BytesIO(_mutate(flat_document, how)))
    assert compare(decoder, sample, "right").problems == []
    found = compare(mutant, sample, how)
    assert found.problems, f"{how}: {found.packets.total()} packets decoded alike"


# --- the document: schema, array form, CRC -------------------------------------------------------------


def _valid(document: bytes, level: str) -> list[str]:
    result = spp.validate_xtce(io.BytesIO(document), level=level, print_results=False, raise_on_error=False,
                               allow_schema_download=False)
    return [str(e) for e in result.errors]


def test_both_forms_are_valid_xtce_1_2(flat_document):
    # The XSD of namespace http://www.omg.org/spec/XTCE/20180204 (bundled with space_packet_parser, offline).
    assert _valid(xtce.to_bytes(), "schema") == []
    assert _valid(flat_document, "all") == []  # and every reference resolves, every type and parameter is used


def test_schema_validation_can_fail():
    broken = xtce.to_bytes().replace(b"<xtce:FixedValue>0</xtce:FixedValue>", b"<xtce:Fixed>0</xtce:Fixed>", 1)
    assert _valid(broken, "schema")


def layout(document: bytes) -> dict[str, tuple]:
    """Each container: (base container, APID restriction, its entries as scalar (name, encoding, bits, unit)),
    array parameters expanded element by element in DimensionList order (the last index fastest)."""
    root = ET.fromstring(document)
    types = {t.get("name"): t for t in root.find("x:TelemetryMetaData/x:ParameterTypeSet", NS)}
    type_of = {p.get("name"): p.get("parameterTypeRef") for p in root.iterfind(".//x:ParameterSet/x:Parameter", NS)}

    def scalar(type_name: str) -> tuple[str, int, str]:
        t = types[type_name]
        encoding = t.find("x:IntegerDataEncoding", NS)
        if encoding is None:
            encoding = t.find("x:FloatDataEncoding", NS)
        unit = t.find("x:UnitSet/x:Unit", NS)
        return encoding.get("encoding"), int(encoding.get("sizeInBits")), "" if unit is None else unit.text

    def entries(name: str) -> list[tuple]:
        t = types[type_of[name]]
        if not t.tag.endswith("ArrayParameterType"):
            return [(name, *scalar(type_of[name]))]
        ranges = [range(int(d.find("x:StartingIndex/x:FixedValue", NS).text),
                        int(d.find("x:EndingIndex/x:FixedValue", NS).text) + 1)
                  for d in t.iterfind("x:DimensionList/x:Dimension", NS)]
        return [(f"{name}_{'_'.join(map(str, index))}", *scalar(t.get("arrayTypeRef")))
                for index in itertools.product(*ranges)]

    out = {}
    for container in root.iterfind(".//x:ContainerSet/x:SequenceContainer", NS):
        base = container.find("x:BaseContainer", NS)
        restriction = None if base is None else container.find(".//x:Comparison", NS).attrib
        fields = [e for ref in container.iterfind("x:EntryList/x:ParameterRefEntry", NS)
                  for e in entries(ref.get("parameterRef"))]
        out[container.get("name")] = (None if base is None else base.get("containerRef"), restriction, fields)
    return out


def test_the_array_form_describes_the_bits_that_were_decoded(flat_document):
    arrays, flat = layout(xtce.to_bytes()), layout(flat_document)
    assert arrays == flat
    header_bits = sum(bits for _, _, bits, _ in arrays[xtce.BASE_CONTAINER][2])
    assert header_bits == 8 * (icd.PRIMARY_HEADER_OCTETS + icd.SECONDARY_HEADER_OCTETS)
    by_apid = {int(r["value"]): fields for _, r, fields in arrays.values() if r}
    assert sorted(by_apid) == sorted(icd.PAYLOADS)
    for apid, fields in by_apid.items():
        assert header_bits + sum(bits for _, _, bits, _ in fields) == 8 * icd.packet_octets(apid)


def test_the_array_form_keeps_the_windows_as_arrays():
    shapes = {}
    root = ET.fromstring(xtce.to_bytes())
    for t in root.iterfind(".//x:ArrayParameterType", NS):
        shapes[t.get("name")] = tuple(int(d.find("x:EndingIndex/x:FixedValue", NS).text) + 1
                                      for d in t.iterfind(".//x:Dimension", NS))
    type_of = {p.get("name"): p.get("parameterTypeRef") for p in root.iterfind(".//x:Parameter", NS)}
    for apid in icd.STAR_APIDS:
        wc = icd.STAR_APIDS.index(apid)
        name = CONTAINERS[apid]
        af = (icd.N_AF, icd.WINDOW_SAMPLES[wc]) + ((icd.WINDOW_AC_SAMPLES[wc],) if wc == 0 else ())
        assert shapes[type_of[f"{name}__af_adu"]] == af
        assert shapes[type_of[f"{name}__sm_adu"]] == (icd.WINDOW_SAMPLES[wc],)


def _crc(data: bytes, width: int, poly: int, init: int, final_xor: int) -> int:
    """A CRC as XTCE's CRCType describes one (MSB first, no reflection): bit by bit."""
    top, mask, crc = 1 << (width - 1), (1 << width) - 1, init
    for byte in data:
        crc ^= byte << (width - 8)
        for _ in range(8):
            crc = ((crc << 1) ^ poly) & mask if crc & top else (crc << 1) & mask
    return crc ^ final_xor


def test_the_crc_the_document_names_is_the_packets(sample):
    root = ET.fromstring(xtce.to_bytes())
    crc = root.find(".//x:ErrorDetectCorrect/x:CRC", NS)
    assert (crc.get("reflectData"), crc.get("reflectRemainder")) == ("false", "false")
    params = [int(crc.get("width"))] + [int(crc.find(f"x:{tag}", NS).text, 16)
                                        for tag in ("Polynomial", "InitRemainder", "FinalXOR")]
    index = icd.scan_stream(np.frombuffer(sample, np.uint8))
    assert sorted(Counter(index["apid"].tolist()).items()) == [(apid, SAMPLE_PER_APID) for apid in sorted(icd.PAYLOADS)]
    for offset, octets in index[["offset", "octets"]].tolist():
        packet = sample[offset:offset + octets]
        assert _crc(packet[:-2], *params) == int.from_bytes(packet[-2:], "big")
        assert _crc(packet[:-3] + bytes([packet[-3] ^ 1]), *params) != int.from_bytes(packet[-2:], "big")


# --- the generator refuses what it cannot describe ----------------------------------------------------


def test_the_document_is_the_same_bytes_every_time():
    assert xtce.to_bytes() == xtce.to_bytes()


def test_the_header_version_follows_the_layout(monkeypatch):
    before = xtce.layout_digest()
    monkeypatch.setitem(icd.FIELD_DOCS, "gate", icd.FieldDoc("", "another meaning"))
    assert xtce.layout_digest() != before


@pytest.mark.parametrize(("change", "message"), [
    (lambda mp: mp.delitem(icd.FIELD_DOCS, "gate"), "add it to pipeline.icd.FIELD_DOCS"),
    (lambda mp: mp.setitem(icd.PAYLOADS, icd.APID_ATTITUDE, np.dtype([("q", "<f8", (4,))])), "big-endian"),
    (lambda mp: mp.setitem(icd.PAYLOADS, icd.APID_ATTITUDE, np.dtype(
        {"names": ["q", "rate_rad_s"], "formats": [">f8", ">f8"], "offsets": [0, 16]})), "padding"),
    (lambda mp: mp.setitem(icd.PAYLOADS, 400, icd.HK_PAYLOAD), "no APID_* constant"),
    (lambda mp: mp.setitem(icd.PAYLOADS, icd.APID_HK, np.dtype([("value", ">f4", (3,))])), "names 8 channels"),
])
def test_the_generator_refuses_a_layout_it_cannot_describe(monkeypatch, change, message):
    change(monkeypatch)
    with pytest.raises(ValueError, match=re.escape(message)):
        xtce.to_bytes()


# --- gaiasim icd ------------------------------------------------------------------------------------------


def test_gaiasim_icd_writes_the_document(tmp_path):
    runner = CliRunner()
    for flat in (False, True):
        out = tmp_path / f"icd{flat}.xml"
        result = runner.invoke(main, ["icd", "--xtce", str(out), *(["--flat"] if flat else [])])
        assert result.exit_code == 0, result.output
        assert out.read_bytes() == xtce.to_bytes(flat)
        assert f"{len(xtce.parameters(flat))} parameters" in result.output
    result = runner.invoke(main, ["icd", "--xtce", "-"])
    assert result.exit_code == 0 and result.stdout_bytes == xtce.to_bytes()


def test_gaiasim_icd_lists_the_packets():
    result = CliRunner().invoke(main, ["icd", "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [(r["APID"], r["octets"]) for r in rows] == [(a, icd.packet_octets(a)) for a in sorted(icd.PAYLOADS)]
    assert "af_adu u16[9,18,12] ADU" in rows[[r["APID"] for r in rows].index(icd.APID_STAR_WC0)]["fields"]


def test_gaiasim_icd_errors_are_one_line(tmp_path):
    for args in (["icd", "--flat"], ["icd", "--xtce", str(tmp_path / "file" / "icd.xml")]):
        if len(args) == 3:
            (tmp_path / "file").write_text("a file where a folder should be")
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2, result.output
        assert result.output.startswith("gaiasim: error: ") and result.output.count("\n") == 1, result.output
