"""Build the configured meter."""

from __future__ import annotations

from dataflow.metering.embedded import EmbeddedMeter
from dataflow.metering.protocol import Meter
from dataflow.metering.redis_meter import RedisMeter
from dataflow.settings import MeterKind, Settings

__all__ = ["make_meter"]


def make_meter(settings: Settings) -> Meter | None:
    """The meter for the settings; ``None`` when metering is off (benchmarks only)."""
    if settings.meter is MeterKind.OFF:
        return None
    if settings.meter is MeterKind.REDIS:
        assert settings.redis_url is not None
        return RedisMeter.from_url(
            settings.redis_url, prefix=settings.redis_prefix, timeout=settings.meter_timeout
        )
    return EmbeddedMeter()
