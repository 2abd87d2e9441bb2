"""A broken SUT that drops corrupt packets silently: nothing quarantined, and packets_read counts only the
packets it kept (so the run's own balance looks right). REQ-ING-002 (every injected telemetry fault is
reported) must fail on a day with a corrupted link."""

import json

from _wrap import main

from tests.runs import rewrite_table


def bug(out):
    path = out / "run.json"
    info = json.loads(path.read_text())
    info["counts"]["packets_read"] -= info["counts"]["packets_quarantined"]
    path.write_text(json.dumps(info))
    rewrite_table(out, "quarantine", lambda t: t.slice(0, 0))


if __name__ == "__main__":
    main(bug)
