"""Dataset specs: what ``gaiasim generate`` makes, loaded from TOML in datasets/ and checked field by field."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import tomllib
from dataclasses import asdict, dataclass, fields
from pathlib import Path


class SpecError(ValueError):
    """A bad spec, fault plan or argument: the message is one line naming the field and the fix."""


#: Science observations ran from the end of commissioning to 2025-01-15 (docs/facts.md section 1); the
#: scanning law here is the NSL, which started after 4 weeks of EPSL from 2014-07-25.
FIRST_DATE = dt.date(2014, 8, 22)
LAST_DATE = dt.date(2025, 1, 15)
SCALE_RANGE = (1e-6, 1.0)
MAX_DAYS = 31
#: Sky models (gaiasim.sim.sky.MODELS; spelled out here because the simulator's modules import this one).
SKY_MODELS = ("toy", "galaxy")
#: A spec's ``name`` ends up in folder names and reports: a plain label, never a path.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


@dataclass(frozen=True)
class DaySpec:
    seed: int = 42  # seeds the sky, the noise and the fault plan; same seed + spec -> same bytes
    scale: float = 1e-5  # fraction of the real sky density: 1.0 ~ 70 M transits a day
    date: dt.date = dt.date(2016, 1, 16)  # first day (UTC ~ TCB) to generate
    days: int = 1  # consecutive days, same sky
    faults: str = ""  # fault plan TOML (path relative to the spec file), "" for a nominal day
    name: str = "day"  # label used in folder names and reports
    instrument: str = "realistic"  # imperfections: realistic, ideal (none), only:<effect>, without:<effect>,...
    sky: str = "toy"  # sky model: toy (N(<G) table, cheap for test days) or galaxy (population model, docs/sky.md;
    # the medium and day levels' and the full-day benchmark's)

    def __post_init__(self) -> None:
        for key in ("seed", "scale", "days"):
            if isinstance(getattr(self, key), bool):
                raise SpecError(f"{key} = {getattr(self, key)!r}: must be a number, not true/false")
        for key in ("faults", "name", "instrument", "sky"):
            if not isinstance(getattr(self, key), str):
                raise SpecError(f"{key} = {getattr(self, key)!r}: must be a string")
        if not NAME_PATTERN.fullmatch(self.name):
            raise SpecError(f"name = {self.name!r}: must be a label of letters, digits, '_', '.' or '-' "
                            "(at most 64, starting with a letter or digit), not a path")
        from gaiasim.sim.instrument import realism  # not at the top: the simulator's modules import this one

        try:
            realism.effects_named(self.instrument)
        except ValueError as exc:
            raise SpecError(f"{exc} (docs/instrument.md section 5)") from None
        if self.sky not in SKY_MODELS:
            raise SpecError(f"sky = {self.sky!r}: unknown sky model; use one of {', '.join(SKY_MODELS)} "
                            "(docs/sky.md)")
        if not isinstance(self.seed, int) or not 0 <= self.seed < 2**63:
            raise SpecError(f"seed = {self.seed!r}: must be an integer in [0, 2**63)")
        lo, hi = SCALE_RANGE
        if not isinstance(self.scale, int | float) or not lo <= self.scale <= hi:
            raise SpecError(f"scale = {self.scale!r}: must be a number in [{lo:g}, {hi:g}] (1.0 = a real day)")
        if not isinstance(self.date, dt.date) or isinstance(self.date, dt.datetime):
            raise SpecError(f"date = {self.date!r}: must be a date YYYY-MM-DD (without a time)")
        if not isinstance(self.days, int) or not 1 <= self.days <= MAX_DAYS:
            raise SpecError(f"days = {self.days!r}: must be an integer in [1, {MAX_DAYS}]")
        last = self.date + dt.timedelta(days=self.days - 1)
        if self.date < FIRST_DATE or last > LAST_DATE:
            raise SpecError(
                f"date = {self.date} (+{self.days - 1} days): must lie in [{FIRST_DATE}, {LAST_DATE}], "
                "the nominal scanning law's science period"
            )

    def to_json(self) -> dict:
        d = asdict(self)
        d["date"] = self.date.isoformat()
        if self.sky == "toy":  # the default stays out, so digests of specs from before the key are unchanged
            del d["sky"]
        return d

    def digest(self) -> str:
        """SHA-256 of the canonical spec (cache key for datasets built from it)."""
        return hashlib.sha256(json.dumps(self.to_json(), sort_keys=True).encode()).hexdigest()


def _parse_date(key: str, value: object) -> dt.date:
    if isinstance(value, dt.datetime):
        raise SpecError(f"{key} = {value.isoformat()}: must be a date YYYY-MM-DD (without a time)")
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise SpecError(f"{key} = {value!r}: must be a date YYYY-MM-DD") from None


def make_spec(**values: object) -> DaySpec:
    """A :class:`DaySpec` from keyword values, rejecting unknown keys with the list of allowed ones."""
    allowed = {f.name for f in fields(DaySpec)}
    unknown = sorted(set(values) - allowed)
    if unknown:
        raise SpecError(f"unknown key {unknown[0]!r} in the spec; allowed keys: {', '.join(sorted(allowed))}")
    if "date" in values:
        values["date"] = _parse_date("date", values["date"])
    if isinstance(values.get("scale"), int) and not isinstance(values["scale"], bool):
        values["scale"] = float(values["scale"])
    return DaySpec(**values)  # type: ignore[arg-type]


def load_toml(path: Path) -> dict:
    """Parse a TOML file, turning every failure into a one-line :class:`SpecError`."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise SpecError(f"{path}: no such file; give the path of a spec TOML (see datasets/levels/)") from None
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: not valid TOML ({exc}); fix the syntax") from None
    except OSError as exc:
        raise SpecError(f"{path}: cannot read ({exc.strerror})") from None


def load_spec(path: Path) -> tuple[DaySpec, Path | None]:
    """Load a dataset spec TOML; returns the spec and the resolved fault-plan path (or None)."""
    path = Path(path)
    raw = load_toml(path)
    try:
        spec = make_spec(**raw)
    except SpecError as exc:
        raise SpecError(f"{path}: {exc}") from None
    if not spec.faults:
        return spec, None
    folder = path.parent.resolve()
    # A spec is data that may come from anywhere: it names files in its own folder, never elsewhere (an
    # absolute path, '..' or a symbolic link out of it). An operator who means another file says --faults.
    if not (folder / spec.faults).resolve().is_relative_to(folder):
        raise SpecError(f"{path}: faults = {spec.faults!r} lies outside the spec's folder {folder}; put the "
                        "fault plan in that folder, or give it with --faults and no faults key")
    try:
        return spec, resolve_faults(spec.faults, folder)
    except SpecError as exc:
        raise SpecError(f"{path}: {exc}") from None


def resolve_faults(faults: str, base: Path) -> Path:
    p = Path(faults)
    p = p if p.is_absolute() else (base / p)
    if not p.is_file():
        raise SpecError(f"faults = {faults!r}: fault plan {p} not found; give a path relative to the spec file "
                        "(or, with --faults, to the working directory)")
    return p.resolve()
