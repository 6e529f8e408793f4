"""One settings object for the whole service, read from ``SALESPILOT_*`` environment variables.

Nothing happens at import time: call :func:`get_settings` (cached) or build ``Settings()``
yourself. Relative folders (the defaults too) and the settings file ``.env`` are found from the
project root (:func:`project_root`), not the working directory: a notebook opened in
``notebooks/`` or a command run from a sub-folder uses the same data and state as one run at the
root. Every default is an embedded one that runs on a laptop; each points at the real
thing in production (a PostgreSQL replica, an MLflow server, a Prefect server, a Dask cluster).
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: what marks a project root: its settings file, its state folder, its package or its repository
PROJECT_MARKERS = (".env", ".salespilot", "pyproject.toml", ".git")


def project_root(start: Path | None = None) -> Path:
    """The folder relative settings paths are read from: the nearest of ``start`` (default the
    working directory) and its parents that holds a settings file (``.env``), a state folder
    (``.salespilot``), a ``pyproject.toml`` or a ``.git``; ``start`` itself when none does."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if any((folder / marker).exists() for marker in PROJECT_MARKERS):
            return folder
    return here


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SALESPILOT_", env_file=".env", extra="ignore")

    def __init__(self, **values: Any) -> None:
        # the settings file is the project's, wherever the command or notebook runs from
        values.setdefault("_env_file", project_root() / ".env")
        super().__init__(**values)

    # -- where things live ------------------------------------------------------------------
    data_dir: Path = Field(
        Path(".salespilot/demo-data"),
        description="The interaction-history folder (CSV or Parquet files, one per table); "
        "a relative path is read from the project root.",
    )
    state_dir: Path = Field(
        Path(".salespilot"),
        description="Where SalesPilot keeps its own state: features, MLflow store, tokens, lists "
        "(a relative path is read from the project root).",
    )
    mlflow_tracking_uri: str | None = Field(
        None, description="MLflow tracking URI; default a SQLite file in the state folder."
    )
    features_dir: Path | None = Field(
        None, description="Where feature snapshots are written; default <state_dir>/features."
    )

    # -- training -----------------------------------------------------------------------------
    horizon_days: dict[str, int] = Field(
        default_factory=dict,
        description='Label horizon in days per model (JSON), e.g. {"churn_risk": 30}: labels '
        "look this far ahead and the split's embargo is as long. Default: each model's own "
        "(win_probability 60, churn_risk 90); `salespilot train --horizon-days N` overrides it.",
    )
    observed_until: datetime | None = Field(
        None,
        description="Where the export ends (ISO 8601, naive = UTC): rows whose label horizon "
        "reaches past it are unlabelled. Default: the mapping's `observed_until`, else the "
        "latest event of the history.",
    )

    # -- serving ----------------------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = 8000
    env: Literal["dev", "prod"] = Field(
        "dev",
        description="dev or prod. prod refuses to start on a public interface without "
        "allow_public_bind, with a webhook but no webhook_secret, or with the demo's tokens.",
    )
    allow_public_bind: bool = Field(
        False,
        description="In prod, let the API listen on a non-loopback interface (set it once TLS "
        "is in place: a proxy terminating HTTPS in front, or the server's own certificate).",
    )
    serving_model_alias: str = Field("champion", description="Registry alias the API serves.")
    serving_reload_interval_s: float = Field(
        0, ge=0, description="Reload data and models every N seconds (0: only on POST reload)."
    )
    serving_working_hours: tuple[int, int] = Field(
        (8, 18), description="Contact-local hours [start, end) the best-time slots are drawn from."
    )
    serving_factors: int = Field(3, ge=1, le=10, description="Top SHAP factors per sign shown.")
    # -- what one token can make the service spend (salespilot/serving/limits.py) -------------
    serving_rate_per_minute: float = Field(
        60, gt=0, description="Expensive requests a minute per token (as_of, best times, ...)."
    )
    serving_rate_burst: int = Field(20, ge=1, description="Expensive requests at once per token.")
    serving_max_rebuilds: int = Field(
        2, ge=1, description="On-demand as_of rebuilds at once (all tokens); beyond: 429."
    )
    serving_request_timeout_s: float = Field(
        30, gt=0, description="A request's work is abandoned (503 timeout) after this long."
    )
    serving_cache_entries: int = Field(
        512, ge=1, description="Memoised answers kept per state (best times, explanations, ...)."
    )
    serving_as_of_entries: int = Field(
        8, ge=0, description="Rebuilt as_of lists kept per state (each holds one rep's scores)."
    )
    serving_registry_timeout_s: float = Field(
        5, gt=0, description="A reload's registry requests give up after this long (degraded)."
    )
    serving_registry_retries: int = Field(
        1, ge=0, description="Retries of a registry request that got no answer, per reload."
    )
    serving_max_header_bytes: int = Field(
        16_384, ge=1024, description="Request line and headers above this size are refused (431)."
    )
    serving_max_body_bytes: int = Field(
        1_000_000, ge=1, description="Request bodies above this size are refused (413)."
    )
    # -- web pages (salespilot/serving/web) ---------------------------------------------------
    web_session_secret: str | None = Field(
        None,
        description="Key signing the pages' session cookies and the calendar keys; default a "
        "random key kept in <state_dir>/web-session.key.",
    )
    web_session_max_age_s: int = Field(
        8 * 3600, ge=60, description="A page session expires this long after sign-in."
    )
    web_cookie_secure: bool = Field(
        False, description="Mark the session cookies Secure (set it when served over HTTPS)."
    )
    rep_timezones: dict[str, str] = Field(
        default_factory=lambda: {
            "North America": "America/New_York",
            "EMEA": "Europe/Paris",
            "APAC": "Asia/Singapore",
        },
        description="Rep region or team -> IANA zone (JSON; a team entry wins over its reps' "
        "region); unmapped reps get their contacts' usual zone. The one zone setting: best "
        "times show the rep's zone, and each team's morning lists and briefs go out at its "
        "reps' usual zone.",
    )
    # -- ranking (value at stake = weight x probability x value) -----------------------------
    priority_deal_weight: float = Field(1.0, ge=0, description="Weight of win prob. x amount.")
    priority_account_weight: float = Field(
        1.0, ge=0, description="Weight of churn risk x annual value."
    )
    priority_min_churn_risk: float = Field(
        0.1, ge=0, le=1, description="Accounts enter a rep's list from this churn risk up."
    )
    # -- warning rules ------------------------------------------------------------------------
    warn_no_reply_hours: float = Field(48, gt=0, description="No reply for this long: warn.")
    warn_stall_min_days: float = Field(
        5, ge=0, description="Stalled: beyond the stage's norm and beyond this many days."
    )
    warn_postponed_min: int = Field(2, ge=1, description="Demos/meetings postponed: warn from.")

    # -- orchestration (Prefect) -----------------------------------------------------------
    task_runner: str = Field(
        "thread",
        description=(
            "Task runner for the feature and scoring flows: 'thread' (one machine), 'dask' "
            "(a local Dask cluster) or 'dask://HOST:PORT' (an existing Dask scheduler)."
        ),
    )
    dask_workers: int = Field(2, description="Workers of the local Dask cluster ('dask').")
    training_cluster: str = Field(
        "none",
        description=(
            "Where the win model's booster grows: 'none' (this machine), 'dask' (a local Dask "
            "cluster of dask_workers processes) or 'dask://HOST:PORT' (an existing scheduler; "
            "lightgbm.dask, one partition of the training rows per worker)."
        ),
    )
    prefect_api_url: str | None = Field(
        None,
        description=(
            "An existing Prefect server for `salespilot schedule`; default: start a local one."
        ),
    )
    webhook_url: str | None = Field(
        None, description="Where the morning lists are POSTed (JSON, one request per rep)."
    )
    webhook_secret: SecretStr | None = Field(
        None,
        description="Key of the X-SalesPilot-Signature header (HMAC-SHA256 of each POSTed body).",
    )
    webhook_retries: int = 2
    webhook_retry_delay_s: float = 10.0
    morning_cron: str = Field("30 6 * * 1-5", description="Morning lists: working days 06:30.")
    features_cron: str = Field("0 2 * * *", description="Feature rebuild: nightly.")
    training_cron: str = Field("0 3 * * 0", description="Retraining: weekly, Sunday night.")
    brief_cron: str = Field(
        "0 7 * * 1", description="Weekly briefs: Monday 07:00 in each team's time zone."
    )
    default_timezone: str = Field(
        "Europe/London",
        description="Time zone of the company-wide jobs (nightly features, weekly training).",
    )

    # -- targets and process health (salespilot/targets) -----------------------------
    targets_base_quantile: float = Field(0.5, description="Base target = this quantile.")
    targets_stretch_quantile: float = Field(0.8, description="Stretch target = this quantile.")
    targets_floor_quantile: float = Field(0.1, description="Allocation floor quantile per unit.")
    targets_cap_quantile: float = Field(0.9, description="Allocation cap quantile per unit.")
    targets_simulations: int = Field(4000, description="Monte Carlo draws per forecast.")
    targets_seed: int = 0
    targets_ramp_months: float = Field(6.0, description="Months a new rep takes to ramp up.")
    health_basis: Literal["team_history", "fixed"] = Field(
        "team_history",
        description="Process-health bounds: each team's own (healthy at the median of its "
        "reps' last 26 weeks, warning beyond their worst decile) or the fixed HEALTH_* numbers.",
    )
    health_lead_to_meeting_healthy: float = 0.40
    health_lead_to_meeting_warning: float = 0.25
    health_days_in_stage_healthy: float = 7.0
    health_days_in_stage_warning: float = 12.0
    health_response_hours_healthy: float = 24.0
    health_response_hours_warning: float = 72.0
    health_alert_ratio: float = Field(0.70, description="Alert below this share of plan...")
    health_alert_weeks: int = Field(2, description="...this many weeks in a row.")

    @field_validator("horizon_days")
    @classmethod
    def _known_horizons(cls, v: dict[str, int]) -> dict[str, int]:
        from salespilot.features.names import unknown_name
        from salespilot.models import SPECS

        for name, days in v.items():
            if name not in SPECS:
                known = [n for n, spec in SPECS.items() if spec.horizon_applies]
                raise ValueError(unknown_name("model", name, known))
            SPECS[name].with_horizon(days)  # refuses contact_time and non-positive days
        return v

    @field_validator("observed_until")
    @classmethod
    def _utc_naive(cls, v: datetime | None) -> datetime | None:
        if v is not None and v.tzinfo is not None:
            v = v.astimezone(UTC).replace(tzinfo=None)
        return v

    @model_validator(mode="after")
    def _fill_defaults(self) -> Settings:
        root = None
        for name in ("data_dir", "state_dir", "features_dir"):
            path = getattr(self, name)
            if path is not None and not path.expanduser().is_absolute():
                root = root or project_root()
                setattr(self, name, root / path)
            elif path is not None:
                setattr(self, name, path.expanduser())
        if self.mlflow_tracking_uri is None:
            db = (self.state_dir / "mlflow.db").resolve()
            self.mlflow_tracking_uri = f"sqlite:///{db}"
        if self.features_dir is None:
            self.features_dir = self.state_dir / "features"
        return self

    @model_validator(mode="after")
    def _one_zone_setting(self) -> Settings:
        import os

        if "SALESPILOT_TEAM_TIMEZONES" in os.environ:
            raise ValueError(
                "SALESPILOT_TEAM_TIMEZONES is now part of SALESPILOT_REP_TIMEZONES (region or "
                'team -> zone, e.g. {"EMEA North": "Europe/Berlin"}): move its entries there'
            )
        return self

    @model_validator(mode="after")
    def _refuse_insecure_prod(self) -> Settings:
        problems = insecure_for_prod(self)
        if problems:
            raise ValueError("SALESPILOT_ENV=prod refuses to start: " + "; ".join(problems))
        return self

    @property
    def mlflow_artifacts_dir(self) -> Path:
        return (self.state_dir / "mlartifacts").resolve()


def is_loopback(host: str) -> bool:
    """True for an interface only this machine reaches (127.0.0.0/8, ::1, localhost)."""
    import ipaddress

    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name (or 0.0.0.0's spelling of "every interface")


def insecure_for_prod(settings: Settings) -> list[str]:
    """What ``env=prod`` refuses in these settings (empty in dev, or when all is well).

    The demo's tokens are refused where the token store is read, when the service starts
    (:func:`salespilot.serving.auth.refuse_demo_tokens`).
    """
    if settings.env == "dev":
        return []
    problems = []
    if not is_loopback(settings.host) and not settings.allow_public_bind:
        problems.append(
            f"the API would listen on {settings.host} without TLS in front; bind 127.0.0.1 "
            "behind a proxy that terminates HTTPS, or set SALESPILOT_ALLOW_PUBLIC_BIND=true "
            "once TLS is in place"
        )
    if settings.webhook_url and settings.webhook_secret is None:
        problems.append(WEBHOOK_SECRET_MISSING)
    return problems


#: why prod will not POST lists unsigned (settings at start, the delivery flows at send time)
WEBHOOK_SECRET_MISSING = (
    "a webhook without SALESPILOT_WEBHOOK_SECRET: the receiver could not tell the lists from "
    "forged ones; set the secret it checks the X-SalesPilot-Signature header with"
)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
