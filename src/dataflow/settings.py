"""One typed settings object, built once from ``DATAFLOW_*`` variables and passed in."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path

__all__ = ["METER_OFF_WARNING", "MeterKind", "Settings", "SettingsError"]


class SettingsError(ValueError):
    """A ``DATAFLOW_*`` variable holds a value we cannot use."""


class MeterKind(StrEnum):
    OFF = "off"  # benchmarks only: nothing is counted, everything else is still checked
    EMBEDDED = "embedded"
    REDIS = "redis"


METER_OFF_WARNING = (
    "DATAFLOW_METER=off: data accesses are NOT COUNTED — nothing is billed, no access records, "
    "no monthly caps and no rate limits (they are counters); keys, status, authorization "
    "windows and table scopes are still checked. For benchmarks only."
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Everything configurable. Embedded defaults live under ``data_dir``."""

    data_dir: Path
    database_url: str
    redis_url: str | None
    meter: MeterKind
    release_dir: Path | None = None
    # Schema changes (Alembic, the scheduler's job table) connect with this URL when set: the
    # schema owner, so the app's own role needs no ownership (README, "Security").
    migration_database_url: str | None = None
    redis_prefix: str = "df"
    billing_grace_days: int = 5  # days after a month before its drafts are issued automatically
    # off (None) by default: invoices overdue more than N days propose an Art. 45 I warning
    billing_overdue_warning_days: int | None = None
    meter_timeout: float = 2.0  # seconds before a data request gets 503 instead of waiting
    settle_interval: float = 5.0  # seconds between in-process settlements (0: off)
    api_cache_mb: int = 64  # per-worker response cache (0 turns it off)
    api_query_seconds: float = 10.0  # time limit of one rows query
    console_idle_minutes: float = 30.0  # a console session unused this long ends
    console_secret: str | None = None  # signs CSRF tokens; None: $DATA_DIR/console.secret
    console_secure_cookies: bool = False  # Secure cookies even when the app sees plain http
    repo_root: Path = Path(__file__).resolve().parents[2]
    # a staff credential (dfa_…) naming who runs the CLI and with which role; never printed
    staff_token: str | None = field(default=None, repr=False)

    @property
    def store_dir(self) -> Path:
        return self.data_dir / "store"

    @property
    def releases_dir(self) -> Path:
        return self.data_dir / "releases"

    @property
    def datasets_dir(self) -> Path:
        return self.repo_root / "datasets"

    @property
    def tables_dir(self) -> Path:
        return self.repo_root / "tables"

    @property
    def owner_database_url(self) -> str:
        """The URL schema changes run with: the migration URL, else the app's own."""
        return self.migration_database_url or self.database_url

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        data_dir = Path(env.get("DATAFLOW_DATA_DIR", "") or Path.cwd() / "var").resolve()
        database_url = env.get("DATAFLOW_DATABASE_URL") or f"sqlite:///{data_dir / 'dataflow.db'}"
        redis_url = env.get("DATAFLOW_REDIS_URL") or None
        meter_raw = env.get("DATAFLOW_METER") or ("redis" if redis_url else "embedded")
        try:
            meter = MeterKind(meter_raw)
        except ValueError:
            choices = ", ".join(m.value for m in MeterKind)
            raise SettingsError(
                f"DATAFLOW_METER={meter_raw!r}: expected one of {choices}"
            ) from None
        if meter is MeterKind.REDIS and not redis_url:
            raise SettingsError(
                "DATAFLOW_METER=redis needs DATAFLOW_REDIS_URL (e.g. redis://127.0.0.1:6379/0)"
            )
        release = env.get("DATAFLOW_RELEASE_DIR")
        try:
            cache_mb = int(env.get("DATAFLOW_API_CACHE_MB") or 64)
            query_seconds = float(env.get("DATAFLOW_API_QUERY_SECONDS") or 10.0)
        except ValueError as e:
            raise SettingsError(
                f"DATAFLOW_API_CACHE_MB / DATAFLOW_API_QUERY_SECONDS: {e}"
            ) from None
        if cache_mb < 0 or not 0 < query_seconds <= 600:
            raise SettingsError(
                "DATAFLOW_API_CACHE_MB must be ≥ 0 and DATAFLOW_API_QUERY_SECONDS in (0, 600]"
            )
        return cls(
            data_dir=data_dir,
            database_url=database_url,
            redis_url=redis_url,
            meter=meter,
            release_dir=Path(release).resolve() if release else None,
            migration_database_url=env.get("DATAFLOW_MIGRATION_DATABASE_URL") or None,
            redis_prefix=env.get("DATAFLOW_REDIS_PREFIX", "df"),
            billing_grace_days=_int(env, "DATAFLOW_BILLING_GRACE_DAYS", 5),
            billing_overdue_warning_days=(
                _int(env, "DATAFLOW_BILLING_OVERDUE_WARNING_DAYS", 0)
                if env.get("DATAFLOW_BILLING_OVERDUE_WARNING_DAYS")
                else None
            ),
            meter_timeout=_float(env, "DATAFLOW_METER_TIMEOUT", 2.0),
            settle_interval=_float(env, "DATAFLOW_SETTLE_INTERVAL", 5.0),
            api_cache_mb=cache_mb,
            api_query_seconds=query_seconds,
            staff_token=env.get("DATAFLOW_STAFF_TOKEN") or None,
            console_idle_minutes=_float(env, "DATAFLOW_CONSOLE_IDLE_MINUTES", 30.0) or 30.0,
            console_secret=env.get("DATAFLOW_CONSOLE_SECRET") or None,
            console_secure_cookies=env.get("DATAFLOW_CONSOLE_SECURE", "").lower()
            in {"1", "true", "yes"},
        )


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name) or str(default)
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r}: expected a whole number") from None
    if value < 0:
        raise SettingsError(f"{name}={raw!r}: must not be negative")
    return value


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "")
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r}: expected a number of seconds") from None
    if value < 0:
        raise SettingsError(f"{name}={raw!r}: expected zero or more seconds")
    return value
