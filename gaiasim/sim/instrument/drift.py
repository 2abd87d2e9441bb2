"""Calibration drift during a day: fault-plan keys that change the true instrument after the calibration
the system under test reads was measured (docs/instrument.md section 7).

Plan keys (all optional; a nominal day has none)::

    focus_drift = 0.03        # the LSF widens by this fraction a day (defocus)    -> fluxes fall: REQ-PHOT-001
    contamination_mag = 0.02  # throughput falls by this many mag a day (ice)      -> G too faint: REQ-PHOT-001
    gain_jumps = 1            # AF CCDs whose gain jumps once, at a random time    -> REQ-PHOT-003
    gain_jump = 0.03          # the jump, relative (+3 %)
    decontamination_h = 12    # the optics are heated this many hours into the first day: the contamination
                              # lost so far is recovered at once (a step up in throughput), then builds again

The jumps are drawn from the dataset's seed (their own stream); every drift is recorded in
``truth/instrument`` (``gain_jump_factor``, ``gain_jump_obmt_ns``, ``focus_drift_per_day``,
``contamination_mag_per_day``, ``decontamination_obmt_ns``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

from gaiasim.spec import SpecError, load_toml

#: Plan keys of this module, by the field they set.
PLAN_KEYS = {"focus_drift": "focus_drift_per_day", "contamination_mag": "contamination_mag_per_day",
             "gain_jumps": "gain_jumps", "gain_jump": "gain_jump", "decontamination_h": "decontamination_h"}


@dataclass(frozen=True)
class DriftPlan:
    focus_drift_per_day: float = 0.0
    contamination_mag_per_day: float = 0.0
    gain_jumps: int = 0
    gain_jump: float = 0.03
    decontamination_h: float = -1.0  # < 0: none

    def __post_init__(self) -> None:
        key = {field: key for key, field in PLAN_KEYS.items()}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise SpecError(f"{key[f.name]} = {value!r}: must be a number")
        if not 0.0 <= self.focus_drift_per_day <= 0.5:
            raise SpecError(f"focus_drift = {self.focus_drift_per_day!r}: must be a fraction in [0, 0.5] a day")
        if not 0.0 <= self.contamination_mag_per_day <= 1.0:
            raise SpecError(f"contamination_mag = {self.contamination_mag_per_day!r}: must be in [0, 1] mag a day")
        if not isinstance(self.gain_jumps, int) or not 0 <= self.gain_jumps <= 63:
            raise SpecError(f"gain_jumps = {self.gain_jumps!r}: must be an integer in [0, 63] (the AF CCDs)")
        if not (self.decontamination_h < 0 or 0.0 <= self.decontamination_h <= 24.0 * 31):
            raise SpecError(f"decontamination_h = {self.decontamination_h!r}: must be hours in [0, 744] after the "
                            "first day's start")
        if not -0.5 < self.gain_jump <= 1.0 or self.gain_jump == 0.0:
            raise SpecError(f"gain_jump = {self.gain_jump!r}: must be a relative change in (-0.5, 1], not 0")


NONE = DriftPlan()


def plan_from_mapping(raw: dict) -> DriftPlan:
    """The drift plan set by this module's keys of ``raw`` (other keys belong to the fault plan)."""
    return DriftPlan(**{field: raw[key] for key, field in PLAN_KEYS.items() if key in raw})


def load_plan(path: Path) -> DriftPlan:
    try:
        return plan_from_mapping(load_toml(Path(path)))
    except SpecError as exc:
        raise SpecError(f"{path}: {exc}") from None
