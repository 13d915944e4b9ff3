"""Carbon-aware scheduling: pick the cleanest forecast window within the delay limit, or don't wait."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from agentic_compression.carbon.chain import FallbackChain
from agentic_compression.carbon.intensity import (
    CarbonIntensityProvider,
    IntensityReading,
    ProviderError,
)
from agentic_compression.carbon.scheduling import CarbonAwareScheduler, best_window
from agentic_compression.carbon.static_table import StaticTableProvider

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def point(minutes: int, grams: float) -> IntensityReading:
    stamp = datetime(2026, 1, 1, 12, 0, tzinfo=UTC).timestamp() + minutes * 60
    iso = datetime.fromtimestamp(stamp, UTC).isoformat().replace("+00:00", "Z")
    return IntensityReading("CAISO_NORTH", grams, "marginal", "watttime", iso, iso, True)


class ForecastProvider(CarbonIntensityProvider):
    """Stands in for a forecasting API (the network boundary)."""

    name = "forecast-stub"

    def __init__(self, points: list[IntensityReading]) -> None:
        self.points = points

    def latest(self, zone: str) -> IntensityReading:
        return self.points[0]

    def forecast(self, zone: str) -> list[IntensityReading]:
        return self.points


FORECAST = [point(-5, 400.0), point(25, 350.0), point(55, 120.0), point(95, 50.0)]


def test_best_window_respects_the_delay_limit() -> None:
    assert best_window(FORECAST, NOW, 3600) == (55 * 60, FORECAST[2])
    assert best_window(FORECAST, NOW, 2 * 3600) == (95 * 60, FORECAST[3])
    assert best_window(FORECAST, NOW, 60) == (0.0, FORECAST[0])  # only the current window


def test_no_point_in_range_gives_none() -> None:
    assert best_window([point(120, 10.0)], NOW, 60) is None


def test_scheduler_sleeps_until_the_clean_window() -> None:
    slept: list[float] = []
    chain = FallbackChain([ForecastProvider(FORECAST)], cache=None)
    scheduler = CarbonAwareScheduler(
        chain, "CAISO_NORTH", 3600, sleep=slept.append, clock=lambda: NOW
    )
    decision = scheduler.wait_for_clean_window()
    assert slept == [55 * 60]
    assert decision.start_intensity_g_per_kwh == 120.0 and decision.now_intensity_g_per_kwh == 400.0
    assert "waited 55.0 min" in decision.note and "marginal" in decision.note


def test_without_a_forecast_it_never_waits() -> None:
    slept: list[float] = []
    chain = FallbackChain([StaticTableProvider()], cache=None)
    scheduler = CarbonAwareScheduler(chain, "FR", 3600, sleep=slept.append, clock=lambda: NOW)
    decision = scheduler.wait_for_clean_window()
    assert slept == [] and decision.waited_s == 0.0
    assert "no forecast for FR" in decision.note
    with pytest.raises(ProviderError):
        chain.forecast("FR")
