"""Try carbon-intensity providers in order, with a cache, and record why earlier ones failed.

A run reports the reading it used (its source and timestamps) together with each provider that
failed before it and why; every fallback is also logged as a warning.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass

from agentic_compression.carbon.cache import ReadingCache, ReadingKind
from agentic_compression.carbon.electricitymaps import TOKEN_ENV, ElectricityMapsProvider
from agentic_compression.carbon.intensity import (
    CarbonIntensityProvider,
    IntensityReading,
    ProviderError,
)
from agentic_compression.carbon.static_table import StaticTableProvider
from agentic_compression.carbon.watttime import PASSWORD_ENV, USERNAME_ENV, WattTimeProvider

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FailedAttempt:
    """A provider that gave no reading, and its error message."""

    provider: str
    error: str


@dataclass(frozen=True)
class ChainResult:
    """The reading used, whether it came from the cache, and the providers that failed before it."""

    reading: IntensityReading
    from_cache: bool
    failures: tuple[FailedAttempt, ...]


@dataclass(frozen=True)
class ChainForecast:
    """Like :class:`ChainResult`, for a forecast."""

    readings: tuple[IntensityReading, ...]
    from_cache: bool
    failures: tuple[FailedAttempt, ...]


class FallbackChain:
    """Ask each provider in turn (its cached value first) until one gives a reading.

    Example:
        >>> chain = FallbackChain([StaticTableProvider()], cache=None)
        >>> chain.latest("FR").reading.source.startswith("codecarbon-static:")
        True
    """

    def __init__(
        self, providers: Sequence[CarbonIntensityProvider], cache: ReadingCache | None
    ) -> None:
        if not providers:
            raise ValueError("FallbackChain needs at least one provider")
        self.providers = tuple(providers)
        self.cache = cache

    def latest(self, zone: str) -> ChainResult:
        """The first available latest reading; raises ProviderError naming every failure."""
        readings, from_cache, failures = self._first_available(zone, "latest")
        return ChainResult(readings[0], from_cache, failures)

    def forecast(self, zone: str) -> ChainForecast:
        """The first available forecast; raises ProviderError naming every failure."""
        readings, from_cache, failures = self._first_available(zone, "forecast")
        return ChainForecast(tuple(readings), from_cache, failures)

    def _first_available(
        self, zone: str, kind: ReadingKind
    ) -> tuple[list[IntensityReading], bool, tuple[FailedAttempt, ...]]:
        failures: list[FailedAttempt] = []
        for provider in self.providers:
            cached = self.cache.get(provider.name, zone, kind) if self.cache else None
            if cached:
                return cached, True, tuple(failures)
            try:
                fetched = [provider.latest(zone)] if kind == "latest" else provider.forecast(zone)
            except ProviderError as exc:
                failures.append(FailedAttempt(provider.name, str(exc)))
                logger.warning(
                    "carbon intensity: %s failed, trying the next: %s", provider.name, exc
                )
                continue
            if self.cache:
                self.cache.put(provider.name, zone, kind, fetched)
            return fetched, False, tuple(failures)
        summary = "; ".join(f"{failure.provider}: {failure.error}" for failure in failures)
        raise ProviderError(f"no carbon-intensity {kind} for zone {zone!r}: {summary}")


def default_chain(cache: ReadingCache | None = None) -> FallbackChain:
    """Electricity Maps if its token is set, WattTime if its credentials are, then the static table.

    ``cache`` defaults to a :class:`ReadingCache` at its default path.

    Example:
        >>> # With no API credentials in the environment:
        >>> [p.name for p in default_chain().providers]  # doctest: +SKIP
        ['codecarbon-static']
    """
    providers: list[CarbonIntensityProvider] = []
    if os.environ.get(TOKEN_ENV):
        providers.append(ElectricityMapsProvider())
    if os.environ.get(USERNAME_ENV) and os.environ.get(PASSWORD_ENV):
        providers.append(WattTimeProvider())
    providers.append(StaticTableProvider())
    return FallbackChain(providers, cache if cache is not None else ReadingCache())
