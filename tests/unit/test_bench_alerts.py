"""The false-alert campaign of ``nox -s bench`` (gaiasim.bench.bench_alerts), at a tiny scale: the scale is chosen
for the transits asked, the day is generated, run and validated, and k, N, the rate, its upper bound and the
recall per class are reported."""

from __future__ import annotations

import pytest

from gaiasim import bench
from gaiasim.validate import bounds


def test_the_scale_gives_the_transits_asked():
    scale = bench.alerts_scale(1.2e7)
    assert 0.1 < scale < 0.25, "about 0.15 for 1.2e7 transits (70-80 M transits a day at scale 1)"
    assert bench.alerts_scale(2.4e7) == pytest.approx(2 * scale, rel=0.01)


def test_a_tiny_campaign_reports_the_false_alert_rate_and_the_recall_per_class(tmp_path, capsys):
    r = bench.bench_alerts(tmp_path, target_transits=5_000, boost=3e5, workers=1)
    assert r["transits"] >= 4_000, "a dry run's estimate, within its sampling"
    assert r["transients"]["boost"] == 3e5 and r["transients"]["detectable"] > 0
    assert r["false_alerts"] >= 0 and r["false_upper_per_million"] == pytest.approx(
        bounds.poisson_upper(r["false_alerts"]) / r["transits"] * 1e6)
    no_false = r["checks"]["no_false_alerts"]
    assert no_false["requirement"] == "REQ-ALR-002"
    # 5,000 transits bound the rate only to 600 per 10^6: n/a unless a false alert makes it fail.
    assert no_false["status"] == ("n/a" if r["false_alerts"] == 0 else "FAIL")
    classes = [row for row in r["recall"] if row["group"] == "class"]
    assert classes and classes[-1]["bin"] == "all" and classes[-1]["n"] == r["transients"]["detectable"]
    bench.print_alerts(r)
    printed = capsys.readouterr().out
    assert f"k = {r['false_alerts']} in N = {r['transits']} transits" in printed
    assert "recall class all:" in printed and "95 % lower bound" in printed
    assert (tmp_path / "dataset" / "dataset.json").is_file() and (tmp_path / "run" / "run.json").is_file()
