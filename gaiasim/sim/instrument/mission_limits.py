"""The spacecraft's HK limits, as the mission database gives them (``hk_limits.toml`` beside this module):
where the simulator puts its injected excursions (between the yellow and red limits) and stale values.

The simulator reads its own copy with its own reader; the pipeline monitors against its own table
(``pipeline/data/hk_limits.toml``, read by ``pipeline.limits``). tests/unit/test_instrument_values.py pins
the two equal, so a wrong limit on either side shows.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from importlib.resources import files
from importlib.resources.abc import Traversable

MISSION_LIMITS = files(__package__).joinpath("hk_limits.toml")


@dataclass(frozen=True)
class MissionLimit:
    channel: str  # HK channel mnemonic (the ICD's), unit as suffix
    red_low: float  # channel unit
    yellow_low: float
    yellow_high: float
    red_high: float
    persistence: int  # consecutive samples out of limits before the ground raises an event
    stale_after_s: float  # an unchanged value is stale after this long, s (0: not monitored)
    max_rate_per_s: float  # largest |dv/dt| the ground accepts, unit/s (0: not monitored)


def load(source: Traversable = MISSION_LIMITS) -> dict[str, MissionLimit]:
    """Limits by channel; refuses a table whose limits are not ordered red < yellow < yellow < red."""
    out = {}
    keys = [f.name for f in fields(MissionLimit) if f.name != "channel"]
    for channel, entry in tomllib.loads(source.read_text()).items():
        limit = MissionLimit(channel, **{k: int(entry[k]) if k == "persistence" else float(entry[k]) for k in keys})
        if not limit.red_low < limit.yellow_low < limit.yellow_high < limit.red_high:
            raise ValueError(f"{source}: [{channel}]: limits not ordered red_low < yellow_low < yellow_high < red_high")
        out[channel] = limit
    return out
