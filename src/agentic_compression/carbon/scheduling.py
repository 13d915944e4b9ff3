"""Carbon-aware scheduling: start heavy work in the cleanest forecast window within a delay limit.

Where a provider offers a forecast (Electricity Maps' paid plans, WattTime's MOER), a trial can wait
for the lowest forecast intensity that begins no later than ``max_delay_s`` from now. Without a
forecast (the static table has none) the scheduler says so once and never waits: it does not guess.

Example:
    >>> scheduler = CarbonAwareScheduler(default_chain(), "CAISO_NORTH", max_delay_s=3600)  # doctest: +SKIP
    >>> decision = scheduler.wait_for_clean_window()   # sleeps, then says what it did   # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from agentic_compression.carbon.chain import FallbackChain
from agentic_compression.carbon.intensity import IntensityReading, ProviderError


@dataclass(frozen=True)
class WindowDecision:
    """What the scheduler decided before a trial, recorded with the trial's provenance."""

    waited_s: float
    start_intensity_g_per_kwh: float | None
    now_intensity_g_per_kwh: float | None
    note: str


def _parse(timestamp: str) -> datetime:
    parsed = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def best_window(
    forecast: Sequence[IntensityReading], now: datetime, max_delay_s: float
) -> tuple[float, IntensityReading] | None:
    """The forecast point with the lowest intensity starting within ``max_delay_s`` of ``now``.

    Returns ``(seconds to wait, reading)``; the current window (the latest point at or before now)
    counts as a zero wait. Ties go to the earliest point. None when no point falls in the range.

    Example:
        >>> from agentic_compression.carbon.intensity import IntensityReading
        >>> def at(t, g):
        ...     return IntensityReading("Z", g, "marginal", "test", t, t, False)
        >>> now = _parse("2026-01-01T00:00:00Z")
        >>> points = [at("2026-01-01T00:00:00Z", 300.0), at("2026-01-01T00:30:00Z", 100.0)]
        >>> best_window(points, now, 3600)[0]
        1800.0
    """
    candidates: list[tuple[float, float, IntensityReading]] = []
    current: tuple[float, float, IntensityReading] | None = None
    for reading in forecast:
        delay = (_parse(reading.observed_at) - now).total_seconds()
        if delay <= 0:
            if current is None or delay > current[1]:
                current = (reading.g_co2_per_kwh, delay, reading)
        elif delay <= max_delay_s:
            candidates.append((reading.g_co2_per_kwh, delay, reading))
    if current is not None:
        candidates.append((current[0], 0.0, current[2]))
    if not candidates:
        return None
    _, delay, reading = min(candidates, key=lambda c: (c[0], c[1]))
    return max(0.0, delay), reading


class CarbonAwareScheduler:
    """Delays each heavy trial to the cleanest forecast window within ``max_delay_s``."""

    def __init__(
        self,
        chain: FallbackChain,
        zone: str,
        max_delay_s: float,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.chain, self.zone, self.max_delay_s = chain, zone, max_delay_s
        self._sleep, self._clock = sleep, clock

    def wait_for_clean_window(self) -> WindowDecision:
        try:
            forecast = self.chain.forecast(self.zone).readings
        except ProviderError as error:
            return WindowDecision(
                0.0, None, None, f"no forecast for {self.zone}, not waiting: {error}"
            )
        now = self._clock()
        choice = best_window(forecast, now, self.max_delay_s)
        if choice is None:
            return WindowDecision(
                0.0, None, None, f"forecast for {self.zone} has no point in range"
            )
        delay, reading = choice
        current = best_window(forecast, now, 0.0)
        now_g = current[1].g_co2_per_kwh if current else None
        if delay > 0:
            self._sleep(delay)
        return WindowDecision(
            waited_s=delay,
            start_intensity_g_per_kwh=reading.g_co2_per_kwh,
            now_intensity_g_per_kwh=now_g,
            note=(
                f"waited {delay / 60:.1f} min for {reading.g_co2_per_kwh:.0f} gCO2/kWh "
                f"({reading.signal}, {reading.source}, window {reading.observed_at})"
                if delay > 0
                else f"started now: no cleaner window within {self.max_delay_s / 60:.0f} min"
            ),
        )
