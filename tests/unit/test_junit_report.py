"""JUnit XML of the checks (junitparser): what is written reads back the same, and the campaign counts it."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st
from junitparser import Failure, JUnitXml, Properties, Skipped

from gaiasim.campaign import _junit_counts
from gaiasim.validate import checks, report

# Notes are the harness's own one-line texts: anything but the control characters XML 1.0 cannot carry.
_NOTES = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=40)
RESULTS = st.lists(st.builds(
    checks.Result, st.sampled_from(checks.CHECKS), st.none() | st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([True, False, None]), _NOTES, st.floats(0, 1e4)), max_size=8)


def read(path: Path) -> list[dict]:
    (suite,) = JUnitXml.fromfile(str(path))
    return [{"name": case.name, "classname": case.classname, "time": case.time,
             "props": {p.name: p.value for props in case.iterchildren(Properties) for p in props},
             "result": [(type(r), r.message) for r in case.result]} for case in suite]


@given(RESULTS)
def test_every_check_reads_back_with_its_verdict_time_and_properties(tmp_path_factory, results):
    path = tmp_path_factory.mktemp("junit") / "v.xml"
    report.write_junit(results, path)
    got = read(path)
    assert [(g["name"], g["classname"]) for g in got] == [(r.check.name, r.check.requirement) for r in results]
    for g, r in zip(got, results, strict=True):
        assert g["time"] == round(r.seconds, 6)
        value = report._value(r)
        assert g["props"] == {"requirement": r.check.requirement, "value": "n/a" if value is None else repr(value),
                              "unit": r.check.unit, "op": r.check.op, "threshold": repr(r.check.threshold)}
        if r.passed is None:
            assert g["result"] == [(Skipped, r.note or "nothing to measure")]
        elif r.passed:
            assert g["result"] == []
        else:
            assert [kind for kind, _ in g["result"]] == [Failure]
            assert r.note in g["result"][0][1]
    counts = _junit_counts(path)
    assert counts == {"tests": len(results), "failures": sum(r.failed for r in results), "errors": 0,
                      "skipped": sum(r.passed is None for r in results)}


def test_the_campaign_counts_pytests_junit_and_nothing_from_a_broken_file(tmp_path):
    pytest_style = tmp_path / "features.xml"  # pytest's layout: a <testsuites> root, errors and failures apart
    pytest_style.write_text(
        '<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" tests="4">'
        '<testcase classname="a" name="ok"/><testcase classname="a" name="bad"><failure message="x"/></testcase>'
        '<testcase classname="a" name="boom"><error message="y"/></testcase>'
        '<testcase classname="a" name="later"><skipped message="z"/></testcase></testsuite></testsuites>')
    assert _junit_counts(pytest_style) == {"tests": 4, "failures": 1, "errors": 1, "skipped": 1}
    (tmp_path / "broken.xml").write_text("<testsuites><testsuite>")
    assert _junit_counts(tmp_path / "broken.xml") == {} == _junit_counts(tmp_path / "missing.xml")
