"""Grid carbon intensity: the reading record and the provider interface.

A reading says what it is: the zone, the value in gCO2eq/kWh, whether it is an average or a
marginal signal, which source gave it, when the datum refers to and when it was fetched, and whether
the source itself calls it an estimate. Providers raise :class:`ProviderError` for every failure a
caller can fall back from (no credentials, network, HTTP status, malformed body, unknown zone).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, get_args

from agentic_compression.errors import AgenticCompressionError

IntensitySignal = Literal["average", "marginal"]


class ProviderError(AgenticCompressionError):
    """A carbon-intensity provider could not give a reading; the message says why, on one line."""


@dataclass(frozen=True)
class IntensityReading:
    """One carbon-intensity value with its provenance.

    ``observed_at`` is the ISO 8601 time the datum refers to (for annual tables, just the year, e.g.
    ``"2023"``); ``fetched_at`` is when this process obtained it (a cached reading keeps it).

    Example:
        >>> reading = IntensityReading(
        ...     zone="FR", g_co2_per_kwh=56.0, signal="average", source="electricitymaps",
        ...     observed_at="2024-03-06T19:00:00.000Z", fetched_at="2024-03-06T19:05:00+00:00",
        ...     is_estimated=False)
        >>> reading.g_co2_per_kwh
        56.0
    """

    zone: str
    g_co2_per_kwh: float
    signal: IntensitySignal
    source: str
    observed_at: str
    fetched_at: str
    is_estimated: bool
    note: str = ""

    def __post_init__(self) -> None:
        if not math.isfinite(self.g_co2_per_kwh) or self.g_co2_per_kwh < 0:
            raise ValueError(f"g_co2_per_kwh must be finite and >= 0, got {self.g_co2_per_kwh}")
        if self.signal not in get_args(IntensitySignal):
            raise ValueError(f"signal must be 'average' or 'marginal', got {self.signal!r}")


def utc_now_iso() -> str:
    """The current UTC time as ISO 8601 with seconds, e.g. ``2024-03-06T19:05:00+00:00``."""
    return datetime.now(UTC).isoformat(timespec="seconds")


class CarbonIntensityProvider(ABC):
    """A source of grid carbon intensity for a zone.

    Implementations: :class:`~agentic_compression.carbon.ElectricityMapsProvider`,
    :class:`~agentic_compression.carbon.WattTimeProvider`,
    :class:`~agentic_compression.carbon.StaticTableProvider`.

    Example:
        >>> from agentic_compression.carbon import StaticTableProvider
        >>> StaticTableProvider().latest("FR").signal
        'average'
    """

    #: Stable identifier, used in cache keys and in the record of a fallback chain.
    name: str

    @abstractmethod
    def latest(self, zone: str) -> IntensityReading:
        """The most recent reading for ``zone``; raises :class:`ProviderError` if there is none."""

    def forecast(self, zone: str) -> list[IntensityReading]:
        """Readings for coming periods, earliest first; :class:`ProviderError` if unsupported."""
        raise ProviderError(f"{self.name} has no forecast (asked for zone {zone!r})")
