"""One settings object for the whole service, read from ``SALESPILOT_*`` environment variables.

Nothing happens at import time: call :func:`get_settings` (cached) or build ``Settings()``
yourself. Every default is an embedded one that runs on a laptop; each points at the real
thing in production (a PostgreSQL replica, an MLflow server, a Prefect server, a Dask cluster).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SALESPILOT_", env_file=".env", extra="ignore")

    # -- where things live ------------------------------------------------------------------
    data_dir: Path = Field(
        Path(".salespilot/demo-data"),
        description="The interaction-history folder (CSV or Parquet files, one per table).",
    )
    state_dir: Path = Field(
        Path(".salespilot"),
        description="Where SalesPilot keeps its own state: features, MLflow store, tokens, lists.",
    )
    mlflow_tracking_uri: str | None = Field(
        None, description="MLflow tracking URI; default a SQLite file in the state folder."
    )
    features_dir: Path | None = Field(
        None, description="Where feature snapshots are written; default <state_dir>/features."
    )

    # -- serving ----------------------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = 8000
    env: str = Field("dev", description="dev or prod; prod refuses insecure defaults.")

    # -- targets and process health (salespilot/serving/targets) -----------------------------
    targets_base_quantile: float = Field(0.5, description="Base target = this quantile.")
    targets_stretch_quantile: float = Field(0.8, description="Stretch target = this quantile.")
    targets_floor_quantile: float = Field(0.1, description="Allocation floor quantile per unit.")
    targets_cap_quantile: float = Field(0.9, description="Allocation cap quantile per unit.")
    targets_simulations: int = Field(4000, description="Monte Carlo draws per forecast.")
    targets_seed: int = 0
    targets_ramp_months: float = Field(6.0, description="Months a new rep takes to ramp up.")
    health_lead_to_meeting_healthy: float = 0.40
    health_lead_to_meeting_warning: float = 0.25
    health_days_in_stage_healthy: float = 7.0
    health_days_in_stage_warning: float = 12.0
    health_response_hours_healthy: float = 24.0
    health_response_hours_warning: float = 72.0
    health_alert_ratio: float = Field(0.70, description="Alert below this share of plan...")
    health_alert_weeks: int = Field(2, description="...this many weeks in a row.")

    @model_validator(mode="after")
    def _fill_defaults(self) -> Settings:
        if self.mlflow_tracking_uri is None:
            db = (self.state_dir / "mlflow.db").resolve()
            self.mlflow_tracking_uri = f"sqlite:///{db}"
        if self.features_dir is None:
            self.features_dir = self.state_dir / "features"
        return self

    @property
    def mlflow_artifacts_dir(self) -> Path:
        return (self.state_dir / "mlartifacts").resolve()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
