"""Pipeline configuration: one frozen dataclass, passed explicitly (nothing read at import)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from pipeline.calibration import Calibration


@dataclass(frozen=True)
class PipelineConfig:
    #: Crossmatch radius, mas. Transit positions here are good to ~0.1 arcsec (the AC pixel of the
    #: transit_id is 177 mas wide); IDT's own radius is not public (docs/facts.md section 4, [U]).
    match_radius_mas: float = 500.0
    #: Calibration database (gains, offsets, read noise, LSF, zero points).
    calibration: Calibration = field(default_factory=Calibration)
    #: HK limit table (TOML, pipeline.limits); "" for the packaged one (pipeline/data/hk_limits.toml).
    hk_limits_path: str = ""
    #: Science-alert thresholds (TOML, pipeline.alerts); "" for the packaged ones (pipeline/data/alerts.toml).
    alerts_path: str = ""

    def limit_table(self):
        """The HK limit table this configuration names (read with importlib.resources when packaged)."""
        from pipeline.limits import default_limits_path, load_limit_table

        return load_limit_table(Path(self.hk_limits_path) if self.hk_limits_path else default_limits_path())

    def alert_config(self):
        """The science-alert thresholds this configuration names."""
        from pipeline.alerts import DEFAULT_CONFIG_PATH, load_alert_config

        return load_alert_config(Path(self.alerts_path) if self.alerts_path else DEFAULT_CONFIG_PATH)

    def check(self) -> None:
        """Refuse (ValueError, naming the field) a configuration the pipeline cannot run with."""
        from pipeline.crossmatch import MAX_RADIUS_MAS, MIN_RADIUS_MAS

        if not MIN_RADIUS_MAS <= self.match_radius_mas < MAX_RADIUS_MAS:
            raise ValueError(f"match_radius_mas = {self.match_radius_mas:g}: must lie in [{MIN_RADIUS_MAS:g}, "
                             f"{MAX_RADIUS_MAS:g}) mas")
        for key in ("hk_limits_path", "alerts_path"):
            path = getattr(self, key)
            if path and not Path(path).is_file():
                raise ValueError(f"{key} = {path!r}: no such file; give a TOML file, or \"\" for the packaged one")

    def to_json(self) -> dict:
        return asdict(self)
