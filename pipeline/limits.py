"""Housekeeping limit tables (``pipeline/data/hk_limits.toml``): what the HK monitor checks each channel against.

Conventions (docs/facts.md section 8): OpenC3/COSMOS limits ``red_low yellow_low yellow_high red_high`` with a
persistence (consecutive samples out of limits before the state changes); yellow = Yamcs WARNING, red =
CRITICAL. A value strictly below a low limit or strictly above a high limit is out of limits.

Nothing is read at import: :func:`load_limit_table` is called with a path (:func:`default_limits_path` for
the repository's table).
"""

from __future__ import annotations

import itertools
import math
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from importlib.resources.abc import Traversable
from pathlib import Path

from pipeline import icd
from pipeline.data import packaged

LIMIT_KEYS = ("red_low", "yellow_low", "yellow_high", "red_high")


def default_limits_path() -> Traversable:
    """The pipeline's HK limit table (package data: ``pipeline/data/hk_limits.toml``)."""
    return packaged("hk_limits.toml")


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class ChannelLimits:
    channel: str  # channel mnemonic (pipeline.icd.HK_CHANNELS), unit as suffix
    red_low: float  # below it: red (CRITICAL) low, channel unit
    yellow_low: float  # below it: yellow (WARNING) low, channel unit
    yellow_high: float  # above it: yellow (WARNING) high, channel unit
    red_high: float  # above it: red (CRITICAL) high, channel unit
    persistence: int = 1  # consecutive samples out of limits (or over the rate limit) before an event, >= 1
    stale_after_s: float = 0.0  # a value exactly unchanged for >= this long is stale, s; 0 = disabled
    max_rate_per_s: float = 0.0  # largest |dv/dt| between consecutive samples, unit/s; 0 = disabled

    def __post_init__(self) -> None:
        where = f"channel {self.channel!r}"
        for key in (*LIMIT_KEYS, "stale_after_s", "max_rate_per_s"):
            value = getattr(self, key)
            if not _is_number(value) or math.isnan(value):
                raise ValueError(f"{where}: {key} = {value!r} must be a number; give it as e.g. {key} = 1.0")
            object.__setattr__(self, key, float(value))
        for lower, upper in itertools.pairwise(LIMIT_KEYS):
            if not getattr(self, lower) < getattr(self, upper):
                raise ValueError(
                    f"{where}: {lower} = {getattr(self, lower)!r} must be below {upper} = {getattr(self, upper)!r} "
                    f"(red limits outside the yellow ones: {' < '.join(LIMIT_KEYS)})"
                )
        if not isinstance(self.persistence, int) or isinstance(self.persistence, bool) or self.persistence < 1:
            raise ValueError(f"{where}: persistence = {self.persistence!r} must be an integer >= 1 "
                             "(1 = an event on the first sample out of limits)")
        for key in ("stale_after_s", "max_rate_per_s"):
            value = getattr(self, key)
            if not (0.0 <= value < math.inf):
                raise ValueError(f"{where}: {key} = {value!r} must be finite and >= 0 (0 disables the check)")


@dataclass(frozen=True)
class LimitTable(Mapping[str, ChannelLimits]):
    """Limits per channel: a read-only mapping channel -> :class:`ChannelLimits`."""

    limits: tuple[ChannelLimits, ...]  # one entry per monitored channel

    def __post_init__(self) -> None:
        names = [c.channel for c in self.limits]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"channel {name!r} has two limit entries; keep one")

    def __getitem__(self, channel: str) -> ChannelLimits:
        for c in self.limits:
            if c.channel == channel:
                return c
        raise KeyError(channel)

    def __iter__(self) -> Iterator[str]:
        return (c.channel for c in self.limits)

    def __len__(self) -> int:
        return len(self.limits)


def limit_table_from_dict(raw: Mapping[str, object], source: str = "limit table") -> LimitTable:
    """A :class:`LimitTable` from ``{channel: {key: value}}``; every channel of the ICD must be there.

    Errors are one-line :class:`ValueError` messages naming ``source``, the channel, the key and the fix.
    """
    known = [c.name for c in icd.HK_CHANNELS]
    allowed = [f.name for f in fields(ChannelLimits) if f.name != "channel"]  # all of them are required
    out = []
    for channel, entry in raw.items():
        if channel not in known:
            raise ValueError(f"{source}: unknown channel {channel!r}; the ICD channels are {', '.join(known)}")
        if not isinstance(entry, Mapping):
            raise ValueError(f"{source}: {channel} must be a table [{channel}] with the keys {', '.join(allowed)}")
        unknown = sorted(set(entry) - set(allowed))
        if unknown:
            raise ValueError(f"{source}: channel {channel!r}: unknown key {unknown[0]!r}; "
                             f"allowed keys: {', '.join(allowed)}")
        missing = [k for k in allowed if k not in entry]
        if missing:
            raise ValueError(f"{source}: channel {channel!r}: key {missing[0]!r} is missing; add {missing[0]} = ...")
        try:
            out.append(ChannelLimits(channel=channel, **entry))
        except ValueError as exc:
            raise ValueError(f"{source}: {exc}") from None
    absent = [name for name in known if name not in raw]
    if absent:
        raise ValueError(f"{source}: channel {absent[0]!r} has no limits; add a [{absent[0]}] table")
    return LimitTable(tuple(out))


def load_limit_table(path: Path | Traversable) -> LimitTable:
    """Load and check a limit table TOML (see ``pipeline/data/hk_limits.toml``)."""
    path = Path(path) if isinstance(path, str) else path
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file; give the path of a limit table (see pipeline/data/hk_limits.toml)"
                         ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML ({exc}); fix the syntax") from None
    return limit_table_from_dict(raw, str(path))
