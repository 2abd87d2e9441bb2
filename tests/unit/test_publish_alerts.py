"""``gaiasim alerts``: a run's alerts as Avro packets (gaiasim/publish/avro.py) and VOEvent 2.0 XML
(gaiasim/publish/voevent.py), docs/alerts.md.

- Avro: the packets read back equal the alerts table's rows (a hypothesis round trip; ids exact as 64-bit
  integers), and the schema evolves by Avro's resolution rules as fastavro applies them: a 1.1 that adds a field
  with a default reads 1.0 files and is read by 1.0 readers; a type change without promotion is refused.
- VOEvent: every document validates against the IVOA's VOEvent 2.0 XML Schema with libxml2 (lxml), an
  independent implementation (tests/data/voevent/: the XSD and a real Gaia Science Alerts packet it accepts),
  and says what the Avro packet says.
- UTC: against the IAU 2006 definition of TCB - TT and a leap second.
"""

from __future__ import annotations

import copy
import datetime as dt
import io as _io
import math
import shutil
import tomllib
from pathlib import Path

import fastavro
import numpy as np
import pyarrow as pa
import pytest
from click.testing import CliRunner
from fastavro.read import SchemaResolutionError
from fastavro.validation import ValidationError
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from gaiasim.cli import main
from gaiasim.publish import avro, packets, voevent
from gaiasim.publish.utc import utc_iso
from gaiasim.sim.timescale import obmt_ns_from_date
from pipeline import schemas
from pipeline.io import InputError
from tests.runs import rewrite_table

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data" / "voevent"
VOE = "{http://www.ivoa.net/xml/VOEvent/v2.0}"
INT64 = st.integers(-(2**63), 2**63 - 1)
F32 = st.floats(width=32, allow_nan=False)
#: OBMT between 2014 and 2025 (ERFA's leap-second table is exact there).
OBMT = st.integers(obmt_ns_from_date(dt.date(2014, 1, 1)), obmt_ns_from_date(dt.date(2025, 1, 1)))
AUTHORED = dt.datetime(2024, 5, 1, 12, 0, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def xsd() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(DATA / "VOEvent-v2.0.xsd")))


@pytest.fixture(scope="module")
def published(transient_run, tmp_path_factory) -> tuple[Path, list[dict], Path, Path]:
    """The transient day's alerts through ``gaiasim alerts``: (run, the packets, the Avro file, the VOEvent folder)."""
    _, run_dir = transient_run
    out = tmp_path_factory.mktemp("published")
    result = CliRunner().invoke(main, ["alerts", str(run_dir), "--avro", str(out / "alerts.avro"),
                                       "--voevent", str(out / "voevents")])
    assert result.exit_code == 0, result.output
    publisher = avro.read(out / "alerts.avro")[0]["publisher"]  # gaiasim's version
    assert publisher.startswith("gaiasim ")
    found = packets.from_run(run_dir, publisher)
    assert len(found) >= 5, "the transients day should raise alerts of every class"
    assert result.output.strip().startswith(f"{len(found)} alerts written: ")
    return run_dir, found, out / "alerts.avro", out / "voevents"


# --- hypothesis: alert tables with the transits they cite -----------------------------------------------------

@st.composite
def alert_days(draw) -> tuple[pa.Table, pa.Table]:
    """An alerts table (:data:`pipeline.schemas.ALERTS`) and a transits table holding every transit it cites."""
    n = draw(st.integers(0, 4))
    ids = draw(st.lists(INT64, min_size=n * 6, max_size=n * 6, unique=True))  # alert, evidence, source
    alerts, transits = [], []
    for i in range(n):
        kind = draw(st.sampled_from(packets.KINDS))
        known = kind != "new_source"
        evidence = sorted(ids[6 * i + 1: 6 * i + 1 + draw(st.integers(1, 4))])
        source_id = ids[6 * i + 5] if known else None
        first, last = sorted(draw(st.lists(OBMT, min_size=2, max_size=2)))
        alerts.append({
            "alert_id": ids[6 * i], "kind": kind, "source_id": source_id,
            "ra_deg": draw(st.floats(0, 360, exclude_max=True)), "dec_deg": draw(st.floats(-90, 90)),
            "g_mag": draw(F32), "delta_g_mag": draw(F32) if known else None,
            "significance_sigma": draw(F32), "n_transits": draw(st.integers(-(2**31), 2**31 - 1)),
            "first_obmt_ns": first, "last_obmt_ns": last, "transit_ids": evidence,
        })
        for t in evidence:
            transits.append({
                "transit_id": t, "obmt_ns": draw(OBMT), "fov": draw(st.sampled_from([1, 2])), "ccd_row": 4,
                "ac_px": 1000, "window_class": 0, "gate": 0,
                "ra_deg": draw(st.floats(0, 360, exclude_max=True)), "dec_deg": draw(st.floats(-90, 90)),
                "source_id": source_id, "match_sep_mas": None,
                **{k: draw(st.none() | F32) for k in ("g_mag", "g_mag_err", "bp_mag", "bp_mag_err", "rp_mag",
                                                      "rp_mag_err")},
                "n_af_ok": 9, "flags": draw(st.integers(-(2**31), 2**31 - 1)),
            })
    return (pa.Table.from_pylist(alerts, schema=schemas.ALERTS),
            pa.Table.from_pylist(transits, schema=schemas.TRANSITS))


@given(alert_days())
def test_avro_packets_read_back_equal_the_alert_table_rows(day):
    alerts, transits = day
    found = packets.packets(alerts, transits, "sut 1.2", "gaiasim test")
    records = avro.read(_io.BytesIO(avro.encode(found)))
    rows = alerts.to_pylist()
    assert len(records) == len(rows)
    for record, row, packet in zip(records, rows, found, strict=True):
        assert {k: record[k] for k in schemas.ALERTS.names} == row
        assert all(type(record[k]) is int for k in ("alert_id", "first_obmt_ns", "last_obmt_ns"))
        assert record == {"schemavsn": avro.SCHEMA_VERSION, **packet}
        cited = {t["transit_id"]: t for t in transits.to_pylist() if t["transit_id"] in set(row["transit_ids"])}
        assert [p["transit_id"] for p in record["history"]] == sorted(cited, key=lambda t: (cited[t]["obmt_ns"], t))
        for point in record["history"]:
            assert point["evidence"]
            assert {k: v for k, v in point.items() if k != "evidence"} == {
                k: cited[point["transit_id"]][k] for k in packets.HISTORY_COLUMNS}


def test_a_known_source_history_holds_all_its_transits_and_flags_the_evidence():
    alerts = pa.Table.from_pylist([{
        "alert_id": 10, "kind": "fading", "source_id": 77, "ra_deg": 10.0, "dec_deg": 0.0, "g_mag": 17.0,
        "delta_g_mag": 1.5, "significance_sigma": 9.0, "n_transits": 2, "first_obmt_ns": 2 * 10**17,
        "last_obmt_ns": 2 * 10**17 + 5, "transit_ids": [10, 30]}], schema=schemas.ALERTS)
    mas = 1.0 / 3.6e6
    transits = pa.Table.from_pylist([
        {"transit_id": tid, "obmt_ns": 2 * 10**17 + k, "fov": 1 + k % 2, "ccd_row": 4, "ac_px": 1000,
         "window_class": 0, "gate": 0, "ra_deg": 10.0, "dec_deg": dec, "source_id": sid, "match_sep_mas": None,
         "g_mag": 17.0, "g_mag_err": err, "bp_mag": None, "bp_mag_err": None, "rp_mag": None, "rp_mag_err": None,
         "n_af_ok": 9, "flags": 0}
        for k, (tid, sid, dec, err) in enumerate([(30, 77, -30 * mas, 0.04), (20, 77, 0.0, 0.5),
                                                  (10, 77, 30 * mas, 0.03), (40, 99, 0.0, 0.1)])],
        schema=schemas.TRANSITS)
    [packet] = packets.packets(alerts, transits, "sut", "gaiasim test")
    assert [(p["transit_id"], p["evidence"]) for p in packet["history"]] == [(30, True), (20, False), (10, True)]
    assert packet["g_mag_err"] == pytest.approx(math.sqrt(0.04**2 + 0.03**2) / 2, rel=1e-6)  # 0.025 mag
    assert packet["pos_err_mas"] == pytest.approx(30.0, rel=1e-6)  # both evidence transits 30 mas away


def test_a_run_whose_alert_cites_a_missing_transit_or_an_unknown_kind_is_refused():
    alerts = pa.Table.from_pylist([{
        "alert_id": 5, "kind": "new_source", "source_id": None, "ra_deg": 1.0, "dec_deg": 2.0, "g_mag": 15.0,
        "delta_g_mag": None, "significance_sigma": 30.0, "n_transits": 2, "first_obmt_ns": 2 * 10**17,
        "last_obmt_ns": 2 * 10**17, "transit_ids": [5, 6]}], schema=schemas.ALERTS)
    with pytest.raises(InputError, match=r"^RUN: alert 5 cites transit 5, which the transits table does not hold; "):
        packets.packets(alerts, schemas.TRANSITS.empty_table(), "sut", "gaiasim", where="RUN")
    odd = alerts.set_column(1, "kind", pa.array(["supernova"]))
    with pytest.raises(InputError, match=r"^RUN: alert 5 has kind 'supernova', not one of brightening, fading, "):
        packets.packets(odd, schemas.TRANSITS.empty_table(), "sut", "gaiasim", where="RUN")


# --- schema versions and evolution ---------------------------------------------------------------------------

def test_the_schema_is_versioned_package_data():
    schema = avro.schema_json()
    assert avro.schema_file() == "alert-1.0.avsc"
    assert (schema["namespace"], schema["name"]) == ("gaiasim.alert", "Alert")
    assert schema["fields"][0]["name"] == "schemavsn"
    names = [f["name"] for f in schema["fields"]]
    assert set(schemas.ALERTS.names) <= set(names)
    nullable = {f.name for f in schemas.ALERTS if f.nullable}
    for field in schema["fields"]:  # nullable columns are unions with null, defaulting to null
        if field["name"] in nullable:
            assert field["type"][0] == "null" and field["default"] is None
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "gaiasim.publish" in setuptools["packages"]
    assert setuptools["package-data"]["gaiasim.publish"] == ["*.avsc"]  # shipped in the wheel


def test_docs_alerts_md_describes_every_field_of_the_schema():
    doc = (REPO / "docs" / "alerts.md").read_text()
    schema = avro.schema_json()
    transit = next(f for f in schema["fields"] if f["name"] == "history")["type"]["items"]
    undocumented = [f["name"] for f in schema["fields"] + transit["fields"] if f"`{f['name']}`" not in doc]
    assert not undocumented, f"docs/alerts.md does not describe {undocumented}"
    assert f"alert-{avro.SCHEMA_VERSION}.avsc" in doc


def _v1_1() -> dict:
    """A minor version: 1.0 plus a field with a default."""
    schema = copy.deepcopy(avro.schema_json("1.0"))
    schema["fields"].append({"name": "cross_ids", "type": {"type": "array", "items": "string"}, "default": [],
                             "doc": "names of the source in other surveys"})
    return schema


def _changed(field: str, new_type) -> dict:
    schema = copy.deepcopy(avro.schema_json("1.0"))
    for f in schema["fields"]:
        if f["name"] == field:
            f["type"] = new_type
    return schema


@pytest.fixture(scope="module")
def v1_0_file(published) -> bytes:
    return published[2].read_bytes()


def test_a_1_1_reader_reads_1_0_files_with_the_default(v1_0_file, published):
    records = avro.read(_io.BytesIO(v1_0_file), reader_schema=_v1_1())
    assert records == [{"schemavsn": "1.0", **p, "cross_ids": []} for p in published[1]]


def test_a_1_0_reader_reads_1_1_files_without_the_new_field(published):
    found = published[1]
    buf = _io.BytesIO()
    fastavro.writer(buf, fastavro.parse_schema(_v1_1()),
                    [{"schemavsn": "1.1", **p, "cross_ids": ["ZTF18abc"]} for p in found], strict=True)
    records = avro.read(_io.BytesIO(buf.getvalue()), reader_version="1.0")
    assert records == [{"schemavsn": "1.1", **p} for p in found]


def test_promotions_resolve_and_other_type_changes_are_refused(v1_0_file):
    widened = avro.read(_io.BytesIO(v1_0_file), reader_schema=_changed("n_transits", "long"))  # int -> long
    assert [r["n_transits"] for r in widened] == [r["n_transits"] for r in avro.read(_io.BytesIO(v1_0_file))]
    for field, new_type in (("alert_id", "int"), ("n_transits", "string"), ("g_mag", "int")):
        with pytest.raises(SchemaResolutionError):
            avro.read(_io.BytesIO(v1_0_file), reader_schema=_changed(field, new_type))
    no_default = _v1_1()
    del no_default["fields"][-1]["default"]
    with pytest.raises(SchemaResolutionError):  # a new field without a default: not a minor version
        avro.read(_io.BytesIO(v1_0_file), reader_schema=no_default)


def test_a_packet_that_does_not_fit_the_schema_is_refused(published):
    packet = dict(published[1][0])
    with pytest.raises(ValueError, match="extra_field"):  # fastavro strict mode: no field silently dropped
        avro.encode([{**packet, "extra_field": 1}])
    del packet["first_utc"]
    with pytest.raises(ValidationError):
        avro.encode([packet])


# --- the CLI ---------------------------------------------------------------------------------------------------

def test_the_avro_file_holds_every_alert_and_is_reproducible(published, tmp_path):
    run_dir, found, avro_path, _ = published
    assert avro.read(avro_path) == [{"schemavsn": "1.0", **p} for p in found]
    assert {r["kind"] for r in found} == set(packets.KINDS)
    result = CliRunner().invoke(main, ["alerts", str(run_dir), "--avro", str(tmp_path / "again.avro")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "again.avro").read_bytes() == avro_path.read_bytes()  # same alerts, same bytes


def test_split_writes_one_avro_file_per_alert(published, tmp_path):
    run_dir, found, _, _ = published
    result = CliRunner().invoke(main, ["alerts", str(run_dir), "--avro", str(tmp_path / "split"), "--split"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "split").iterdir()) == sorted(f"{p['alert_id']}.avro" for p in found)
    for p in found:
        assert avro.read(tmp_path / "split" / f"{p['alert_id']}.avro") == [{"schemavsn": "1.0", **p}]


def test_zero_alerts_write_an_empty_avro_file_with_its_schema(transient_run, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(transient_run[1], run_dir)
    rewrite_table(run_dir, "alerts", lambda t: t.slice(0, 0))
    result = CliRunner().invoke(main, ["alerts", str(run_dir), "--avro", str(tmp_path / "none.avro"),
                                       "--voevent", str(tmp_path / "ve")])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("0 alerts written: ")
    with open(tmp_path / "none.avro", "rb") as f:
        reader = fastavro.reader(f)
        assert reader.writer_schema["name"] == "gaiasim.alert.Alert"
        assert list(reader) == []
    assert list((tmp_path / "ve").iterdir()) == []


def test_operator_errors_are_one_line(transient_run, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(transient_run[1], run_dir, ignore=shutil.ignore_patterns("alerts"))
    cases = [
        (["alerts", str(run_dir), "--avro", str(tmp_path / "a.avro")],
         f"{run_dir} has no alerts table (alerts/*.parquet); publish a run made by a pipeline that keeps the run "
         "contract (docs/run-contract.md; check it with 'gaiasim conform')"),
        (["alerts", str(run_dir)], "nothing to write: give --avro FILE, --voevent DIR or both"),
        (["alerts", str(tmp_path / "nowhere"), "--voevent", str(tmp_path)],
         f"run folder {tmp_path / 'nowhere'} not found; give a folder made by 'gaiasim run'"),
    ]
    for args, message in cases:
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2, result.output
        assert result.stderr == f"gaiasim: error: {message}\n"
    assert not (tmp_path / "a.avro").exists()


# --- VOEvent -----------------------------------------------------------------------------------------------------

def test_the_validator_accepts_a_gaia_science_alert_and_refuses_a_broken_packet(xsd):
    gaia16aac = etree.parse(str(DATA / "Gaia16aac.xml"))
    assert xsd.validate(gaia16aac), xsd.error_log
    gaia16aac.getroot().set("role", "simulation")  # not one of the standard's roles
    assert not xsd.validate(gaia16aac)


def test_every_voevent_validates_against_the_voevent_2_0_schema(published, xsd):
    _, found, _, folder = published
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{p['alert_id']}.xml" for p in found)
    for p in found:
        doc = etree.parse(str(folder / f"{p['alert_id']}.xml"))
        assert xsd.validate(doc), f"{p['alert_id']}: {xsd.error_log}"
        broken = copy.deepcopy(doc)
        broken.getroot().remove(broken.getroot().find("WhereWhen"))
        broken.getroot().append(etree.Element("Where"))  # the validator is not blind to our own packets
        assert not xsd.validate(broken)


def _params(root) -> dict[str, str]:
    return {p.get("name"): p.get("value") for p in root.iter("Param")}


def test_a_voevent_says_what_its_avro_packet_says(published):
    _, found, _, folder = published
    for p in found:
        root = etree.parse(str(folder / f"{p['alert_id']}.xml")).getroot()
        assert root.tag == f"{VOE}VOEvent"
        assert (root.get("ivorn"), root.get("role"), root.get("version")) == (
            f"ivo://gaiasim/alerts#{p['alert_id']}", "test", "2.0")
        params = _params(root)
        assert int(params["alert_id"]) == p["alert_id"]
        assert params["class"] == p["kind"]
        assert (int(params["source_id"]) if "source_id" in params else None) == p["source_id"]
        assert np.float32(params["G"]) == np.float32(p["g_mag"])
        assert np.float32(params["G_err"]) == np.float32(p["g_mag_err"])
        assert (np.float32(params["dG"]) if "dG" in params else None) == p["delta_g_mag"]
        assert [int(t) for t in params["transit_ids"].split()] == p["transit_ids"]
        coords = root.find("WhereWhen/ObsDataLocation/ObservationLocation/AstroCoords")
        assert coords.get("coord_system_id") == "UTC-ICRS-TOPO"
        assert coords.findtext("Time/TimeInstant/ISOTime") == p["first_utc"]
        assert float(coords.findtext("Position2D/Value2/C1")) == p["ra_deg"]
        assert float(coords.findtext("Position2D/Value2/C2")) == p["dec_deg"]
        assert float(coords.findtext("Position2D/Error2Radius")) == pytest.approx(p["pos_err_mas"] / 3.6e6)
        rows = root.findall("What/Table/Data/TR")
        assert [int(tr[0].text) for tr in rows] == [h["transit_id"] for h in p["history"]]


def test_the_role_is_configurable_and_checked(published, tmp_path, xsd):
    run_dir, found, _, _ = published
    result = CliRunner().invoke(main, ["alerts", str(run_dir), "--voevent", str(tmp_path), "--role", "observation"])
    assert result.exit_code == 0, result.output
    doc = etree.parse(str(tmp_path / f"{found[0]['alert_id']}.xml"))
    assert doc.getroot().get("role") == "observation" and xsd.validate(doc)
    result = CliRunner().invoke(main, ["alerts", str(run_dir), "--voevent", str(tmp_path), "--role", "simulated"])
    assert result.exit_code == 2
    with pytest.raises(ValueError, match="role 'simulated'"):
        voevent.document(found[0], role="simulated", authored=AUTHORED)


# --- UTC ---------------------------------------------------------------------------------------------------------

#: IAU 2006 Resolution B3: TDB = TCB - L_B (JD_TCB - T_0) 86400 s + TDB_0, and TT - TDB is periodic, < 2 ms.
L_B, T_0_JD, TDB_0_S = 1.550519768e-8, 2443144.5003725, -6.55e-5


def test_utc_is_tcb_less_the_iau_rate_term_tt_minus_tai_and_the_leap_seconds():
    date = dt.date(2016, 7, 1)  # TAI - UTC = 36 s (1 July 2015 to 31 December 2016, IERS Bulletin C)
    jd_tcb = 2455197.5 + (date - dt.date(2010, 1, 1)).days
    tcb_minus_utc_s = L_B * (jd_tcb - T_0_JD) * 86400.0 - TDB_0_S + 32.184 + 36.0
    [utc] = utc_iso([obmt_ns_from_date(date)])
    expected = dt.datetime.combine(date, dt.time()) - dt.timedelta(seconds=tcb_minus_utc_s)
    assert abs((dt.datetime.fromisoformat(utc) - expected).total_seconds()) < 0.002


def test_the_leap_second_of_2016_is_written_as_23_59_60():
    start = obmt_ns_from_date(dt.date(2017, 1, 1)) + 80 * 10**9  # ~ 8 s before the leap second
    times = utc_iso(start + np.arange(0, 16 * 10**9, 250_000_000))
    seconds = [t[11:19] for t in times]
    assert seconds.count("23:59:60") == 4  # a whole second, at 0.25 s steps
    assert seconds.index("23:59:60") == seconds.index("23:59:59") + 4
    assert seconds[seconds.index("23:59:60") + 4] == "00:00:00" and times[-1].startswith("2017-01-01T")
    assert times == sorted(times)
