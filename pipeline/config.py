"""Pipeline configuration: one frozen dataclass, passed explicitly (nothing read at import)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from pipeline.calibration import Calibration


@dataclass(frozen=True)
class PipelineConfig:
    #: Crossmatch radius, mas. Transit positions here are good to ~0.1 arcsec (the AC pixel of the
    #: transit_id is 177 mas wide); IDT's own radius is not public (FACTS.md section 4, [U]).
    match_radius_mas: float = 500.0
    #: Calibration database (gains, offsets, read noise, LSF, zero points).
    calibration: Calibration = field(default_factory=Calibration)

    def check(self) -> None:
        """Refuse (ValueError, naming the field) a configuration the pipeline cannot run with."""
        from pipeline.crossmatch import MAX_RADIUS_MAS, MIN_RADIUS_MAS

        if not MIN_RADIUS_MAS <= self.match_radius_mas < MAX_RADIUS_MAS:
            raise ValueError(f"match_radius_mas = {self.match_radius_mas:g}: must lie in [{MIN_RADIUS_MAS:g}, "
                             f"{MAX_RADIUS_MAS:g}) mas")

    def to_json(self) -> dict:
        return asdict(self)
