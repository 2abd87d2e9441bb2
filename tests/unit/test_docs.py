"""The project's own documents cannot rot.

- docs/icd.md names everything the ICD (pipeline/icd.py) defines: every APID with its constant, header
  word, length and data length; every packet field at its octet offset; every HK channel with its unit,
  place and the limits of the pipeline's limit table; every quarantine reason with its code; the value of
  samples not read out; and the CRC check value it states is the one the code computes.
- docs/design.md names every import rule of pyproject.toml and every table of a run and of the truth.
- Every relative link in docs/*.md leads to a file (and heading) inside the repository.

Each check is a function returning its problems, and each has a case where it must fire.
"""

from __future__ import annotations

import fnmatch
import os
import re
import tomllib
from pathlib import Path

import numpy as np
import pytest

from gaiasim.sim.truth import TRUTH_TABLES
from pipeline import icd, schemas
from pipeline.limits import LIMIT_KEYS, default_limits_path, load_limit_table

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
ICD_DOC = DOCS / "icd.md"
DESIGN_DOC = DOCS / "design.md"

#: A "word" of a table row: names, numbers (with signs, decimals, hex), ranges like 14-45 and units like 1/s.
_TOKEN = re.compile(r"[\w./+-]+")


def _tokens(line: str) -> set[str]:
    return set(_TOKEN.findall(line))


def _has_line(text: str, *words: str) -> bool:
    """Whether one line of ``text`` holds every one of ``words`` as a whole token."""
    return any(set(words) <= _tokens(line) for line in text.splitlines())


def _apid_constants() -> dict[int, str]:
    return {value: name for name, value in vars(icd).items()
            if name.startswith("APID_") and isinstance(value, int) and value in icd.PAYLOADS}


def _section(text: str, *words: str) -> str:
    """The section of ``text`` under the first heading holding ``words``, up to the next heading of the
    same or a higher level ('' when there is none)."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        level = len(line) - len(line.lstrip("#"))
        if level and line[level:].startswith(" ") and set(words) <= _tokens(line):
            end = next((j for j in range(i + 1, len(lines))
                        if lines[j].startswith("#") and 0 < len(lines[j]) - len(lines[j].lstrip("#")) <= level),
                       len(lines))
            return "\n".join(lines[i:end])
    return ""


def _leaf_fields(dtype: np.dtype, base: int = 0) -> list[tuple[str, int, int]]:
    """(name, octet offset, octets) of every leaf field of a packet dtype, nested payloads flattened."""
    out = []
    for name, (sub, offset, *_) in dtype.fields.items():
        if sub.fields:
            out += _leaf_fields(sub, base + offset)
        else:
            out.append((name, base + offset, sub.itemsize))
    return out


def _number(value: float) -> str:
    return f"{value:g}"


def icd_problems(text: str) -> list[str]:
    """What docs/icd.md (``text``) fails to say of pipeline/icd.py."""
    problems = []
    for apid, name in sorted(_apid_constants().items()):
        octets = icd.packet_octets(apid)
        words = (str(apid), name, f"0x{0x0800 | apid:04X}", str(octets), str(octets - 7))
        if not _has_line(text, *words):
            problems.append(f"APID {apid}: no line with {', '.join(words)}")
        section = _section(text, "APID", str(apid))
        if not section:
            problems.append(f"APID {apid}: no heading 'APID {apid}'")
            continue
        for field, offset, size in _leaf_fields(icd.packet_dtype(apid)):
            if not (_has_line(section, field, f"{offset}-{offset + size - 1}")
                    or _has_line(section, field, str(offset), str(size))):
                problems.append(f"APID {apid}: field {field} at octet {offset} ({size} octets) not in its section")
    hk = _section(text, "APID", str(icd.APID_HK))
    limits = load_limit_table(default_limits_path())
    payload_at = icd.PRIMARY_HEADER_OCTETS + icd.SECONDARY_HEADER_OCTETS
    size = icd.HK_PAYLOAD["value"].base.itemsize
    for i, channel in enumerate(icd.HK_CHANNELS):
        at = payload_at + i * size
        words = (channel.name, channel.unit, f"{at}-{at + size - 1}",
                 *(_number(getattr(limits[channel.name], key)) for key in LIMIT_KEYS))
        if not _has_line(hk, *words):
            problems.append(f"HK channel {channel.name}: no line with {', '.join(words)}")
    for code, reason in icd.QUARANTINE_REASONS.items():
        if not _has_line(text, str(code), reason):
            problems.append(f"quarantine reason {reason} (code {code}) not listed")
    stated = re.search(r"check value \| `0x([0-9A-Fa-f]{4})`", text)
    computed = icd.crc16(np.frombuffer(b"123456789", dtype=np.uint8))
    if stated is None or int(stated.group(1), 16) != computed:
        problems.append(f"the CRC check value is not stated as `0x{computed:04X}`")
    if not re.search(rf"`NOT_READ_ADU` = {icd.NOT_READ_ADU}\b", text):
        problems.append(f"the value of samples not read out is not stated as `NOT_READ_ADU` = {icd.NOT_READ_ADU}")
    for constant in sorted(set(re.findall(r"`([A-Z][A-Z0-9_]{2,})`", text))):
        if not hasattr(icd, constant):
            problems.append(f"`{constant}` is not a constant of pipeline.icd")
    return problems


def design_problems(text: str) -> list[str]:
    """What docs/design.md (``text``) fails to name: import rules, run tables, truth tables."""
    contracts = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    problems = [f"import rule {c['id']} not described" for c in contracts if f"`{c['id']}`" not in text]
    problems += [f"run table {name}/ not named" for name in schemas.RUN_TABLES if f"{name}/" not in text]
    problems += [f"truth table {name} not named" for name in TRUTH_TABLES if not re.search(rf"\b{name}\b", text)]
    return problems


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(text: str) -> set[str]:
    return {_slug(line.lstrip("#")) for line in text.splitlines() if re.match(r"#+ ", line)}


def link_problems(doc: Path, text: str) -> list[str]:
    """Relative links of the markdown ``text`` (as if at ``doc``) that lead nowhere or out of the repository."""
    prose = re.sub(r"`[^`\n]*`", "", re.sub(r"```.*?```", "", text, flags=re.DOTALL))
    problems = []
    for target in re.findall(r"\[[^\]]*\]\(([^)\s]+)\)", prose):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...
            continue
        path_part, _, anchor = target.partition("#")
        if not path_part:  # a heading of this document
            if anchor not in _anchors(text):
                problems.append(f"{doc.name}: link {target}: no such heading here")
            continue
        path = (doc.parent / path_part).resolve()
        if not path.is_relative_to(REPO):
            problems.append(f"{doc.name}: link {target} leads out of the repository")
        elif not path.exists():
            problems.append(f"{doc.name}: link {target} leads to nothing")
        elif anchor and path.suffix == ".md" and anchor not in _anchors(path.read_text()):
            problems.append(f"{doc.name}: link {target}: no such heading in {path.name}")
    return problems


#: The team's notes outside the repository, which nothing in it may cite (docs/ holds the project's own).
_OUTSIDE = re.compile(r"\.\./shared|\b(?:DESIGN|FACTS|STYLE)\.md\b|/work/")
#: Text files of the project (the virtual environment, builds and caches are not the project's).
_SOURCES = ("*.py", "*.md", "*.toml", "*.feature", "*.ipynb", "*.cfg", "*.json", "*.csv")


def outside_citations(text: str) -> list[str]:
    """Lines of ``text`` that cite a path outside the repository (the team's notes)."""
    return [line.strip() for line in text.splitlines() if _OUTSIDE.search(line)]


def _project_files() -> list[Path]:
    """The project's text files: hidden folders (.venv, .git, .nox), builds, caches and reports left out."""
    files = []
    for folder, subfolders, names in os.walk(REPO):
        subfolders[:] = [d for d in subfolders if not (d.startswith(".") or d in ("build", "reports", "__pycache__")
                                                       or d.endswith(".egg-info"))]
        files += [Path(folder) / n for n in names if any(fnmatch.fnmatch(n, pattern) for pattern in _SOURCES)]
    return sorted(files)


# --- the documents as they are -------------------------------------------------------------------------


def test_icd_doc_names_everything_the_icd_defines():
    assert icd_problems(ICD_DOC.read_text()) == []


def test_design_doc_names_the_rules_and_tables():
    assert design_problems(DESIGN_DOC.read_text()) == []


@pytest.mark.parametrize("doc", sorted(DOCS.glob("*.md")), ids=lambda p: p.name)
def test_relative_links_resolve(doc: Path):
    assert link_problems(doc, doc.read_text()) == []


def test_nothing_cites_paths_outside_the_repository():
    found = {str(path.relative_to(REPO)): lines for path in _project_files()
             if path != Path(__file__).resolve() and (lines := outside_citations(path.read_text(errors="replace")))}
    assert found == {}


def test_icd_doc_examples_hold():
    """The doc's bitwise CRC is the ICD's, and its worked example decodes as the doc says."""
    text = ICD_DOC.read_text()
    snippet = re.search(r"```python\n(.*?)```", text, flags=re.DOTALL).group(1)
    names: dict = {"packet": bytes(4)}
    exec(snippet, names)  # the doc's own reference code, defining crc16
    data = np.random.default_rng(5).integers(0, 256, 600, dtype=np.uint8)
    for n in (0, 1, 9, 48, 600):
        assert names["crc16"](data[:n].tobytes()) == icd.crc16(data[:n])
    example = _section(text, "worked", "example")
    octets = np.frombuffer(bytes.fromhex(re.search(r"```\n([0-9a-f ]+)\n```", example).group(1)), dtype=np.uint8)
    head = octets[:14].view(np.dtype([("word0", ">u2"), ("word1", ">u2"), ("data_length", ">u2"),
                                      ("obmt_ns", ">u8")]))[0]
    apid = int(head["word0"]) & icd.MAX_APID
    tid = int(octets[14:22].view(">u8")[0])
    t, fov, row, ac = (int(v[0]) for v in icd.decode_transit_id(np.array([tid])))
    payload = icd.PAYLOADS[apid]
    said = {f"APID 0x{apid:X} = {apid}", f"0x{int(head['word1']) & 0x3FFF:X} = {int(head['word1']) & 0x3FFF}",
            f"= {int(head['data_length'])}: L = {icd.packet_octets(apid)} octets",
            f"{int(head['obmt_ns']):,} ns".replace(",", " "), f"{t:,} ns".replace(",", " "),
            f"FoV {fov}, CCD row {row}, AC pixel {ac}",
            f"`window_class` = {octets[14 + payload.fields['window_class'][1]]}",
            f"`gate` = {octets[14 + payload.fields['gate'][1]]}"}
    assert not {s for s in said if s not in example}
    assert int(head["obmt_ns"]) // icd.TRANSIT_ID_OBMT_QUANTUM_NS == tid >> icd.TRANSIT_ID_TIME_SHIFT


# --- each check fires -----------------------------------------------------------------------------------


def _drop_line(text: str, *words: str) -> str:
    """``text`` without its first line holding every one of ``words``."""
    lines = text.splitlines()
    i = next(i for i, line in enumerate(lines) if set(words) <= _tokens(line))
    return "\n".join(lines[:i] + lines[i + 1:])


#: Damage done to docs/icd.md, and what the check must then say.
TAMPERS = {
    "an APID row gone": (lambda t: _drop_line(t, "301", "APID_STAR_WC1", "626"), "APID 301: no line"),
    "a packet length wrong": (lambda t: t.replace("| 4190 |", "| 4191 |"), "APID 300: no line"),
    "a field gone from one APID": (
        lambda t: _drop_line(_section(t, "APID", "302"), "bp_adu") + "\n" + t.replace(_section(t, "APID", "302"), ""),
        "APID 302: field bp_adu"),
    "a field offset wrong": (lambda t: t.replace("| 3948 | `bp_adu`", "| 3950 | `bp_adu`"), "APID 300: field bp_adu"),
    "an HK limit wrong": (lambda t: t.replace("| 2 | 2.8 | 3.6 | 4.4 |", "| 2 | 2.8 | 3.7 | 4.4 |"),
                          "HK channel vpu_current_a"),
    "a quarantine reason gone": (lambda t: _drop_line(t, "12", "outside_day"), "outside_day"),
    "a wrong CRC check value": (lambda t: t.replace("check value | `0x29B1`", "check value | `0x29B2`"),
                                "check value"),
    "a constant that does not exist": (lambda t: t + "\nThe `WINDOW_ROWS` table.\n", "`WINDOW_ROWS`"),
    "a wrong value of samples not read out": (lambda t: t.replace("`NOT_READ_ADU` = 0", "`NOT_READ_ADU` = 1"),
                                              "NOT_READ_ADU"),
}


@pytest.mark.parametrize("tamper", TAMPERS, ids=list(TAMPERS))
def test_icd_check_fires(tamper: str):
    text = ICD_DOC.read_text()
    damage, expected = TAMPERS[tamper]
    tampered = damage(text)
    assert tampered != text
    problems = icd_problems(tampered)
    assert len(problems) == 1 and expected in problems[0], problems


def test_design_check_fires():
    text = DESIGN_DOC.read_text()
    assert design_problems(text.replace("`pipeline-without-harness`", "the last rule"))
    assert design_problems(text.replace("hk_events/", "hk events"))
    assert any("attitude_events" in p for p in design_problems(text.replace("attitude_events", "attitude events")))


def test_outside_citation_check_fires():
    shared = "/".join(("..", "shared"))  # spelled in pieces, so that this test is no citation itself
    text = f"see {shared}/notes\nas FACTS.md says\nfrom /work{shared[2:]}/x\ndocs/facts.md section 1\nthe FACTS table"
    assert outside_citations(text) == [f"see {shared}/notes", "as FACTS.md says", f"from /work{shared[2:]}/x"]


def test_link_check_fires():
    doc = DOCS / "example.md"
    text = "\n".join([
        "# An example", "",
        "[fine](icd.md) [fine too](icd.md#3-apids) [web](https://example.org/x) [here](#an-example)",
        "[code](../pipeline/icd.py) `[not a link](nowhere.md)`",
        "```", "[in a code block](nowhere.md)", "```",
        "[gone](nowhere.md)", "[outside](../../../etc/hostname)", "[bad heading](icd.md#no-such-heading)",
        "[bad heading here](#no-such-heading)",
    ])
    problems = link_problems(doc, text)
    assert len(problems) == 4, problems
    assert "nowhere.md" in problems[0] and "out of the repository" in problems[1]
    assert "no such heading in icd.md" in problems[2] and "no such heading here" in problems[3]
