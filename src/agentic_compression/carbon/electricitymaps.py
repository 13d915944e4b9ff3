"""Electricity Maps v3: average (consumption-based) carbon intensity per zone, in gCO2eq/kWh.

API: ``GET {base}/v3/carbon-intensity/latest?zone=FR`` and ``.../forecast?zone=FR`` (forecasts need
a paid plan), authenticated by an ``auth-token`` header. Zones are Electricity Maps zone keys such
as ``FR``, ``DE`` or ``US-CAL-CISO``.
"""

from __future__ import annotations

import os
from typing import Any

from agentic_compression.carbon.http import HttpStatusError, RetryPolicy, get_json, require
from agentic_compression.carbon.intensity import (
    CarbonIntensityProvider,
    IntensityReading,
    ProviderError,
    utc_now_iso,
)

DEFAULT_BASE_URL = "https://api.electricitymap.org"
TOKEN_ENV = "ELECTRICITYMAPS_API_TOKEN"
_SERVICE = "Electricity Maps"


class ElectricityMapsProvider(CarbonIntensityProvider):
    """Carbon intensity from the Electricity Maps API.

    The token comes from ``token`` or the ``ELECTRICITYMAPS_API_TOKEN`` environment variable.

    Example:
        >>> provider = ElectricityMapsProvider(token="...")  # doctest: +SKIP
        >>> provider.latest("FR").g_co2_per_kwh  # doctest: +SKIP
        56.0
    """

    name = "electricitymaps"

    def __init__(
        self,
        token: str | None = None,
        *,
        base_url: str = DEFAULT_BASE_URL,
        policy: RetryPolicy | None = None,
    ) -> None:
        resolved = (token or os.environ.get(TOKEN_ENV, "")).strip()
        if not resolved:
            raise ProviderError(f"{_SERVICE} needs an API token: pass token=... or set {TOKEN_ENV}")
        self._token = resolved
        self._base_url = base_url.rstrip("/")
        self._policy = policy or RetryPolicy()

    def latest(self, zone: str) -> IntensityReading:
        body = self._get("latest", zone)
        fetched_at = utc_now_iso()
        notes = [
            f"{body.get('emissionFactorType', 'unstated')} emission factors",
            f"updated {body.get('updatedAt', 'unstated')}",
        ]
        is_estimated = require(body, "isEstimated", bool, service=_SERVICE)
        if is_estimated:
            notes.append(f"estimation method {body.get('estimationMethod') or 'unstated'}")
        return IntensityReading(
            zone=require(body, "zone", str, service=_SERVICE),
            g_co2_per_kwh=require(body, "carbonIntensity", float, service=_SERVICE),
            signal="average",
            source=self.name,
            observed_at=require(body, "datetime", str, service=_SERVICE),
            fetched_at=fetched_at,
            is_estimated=is_estimated,
            note="; ".join(notes),
        )

    def forecast(self, zone: str) -> list[IntensityReading]:
        body = self._get("forecast", zone)
        fetched_at = utc_now_iso()
        points = require(body, "forecast", list, service=_SERVICE)
        if not points:
            raise ProviderError(f"{_SERVICE}: empty forecast for zone {zone!r}")
        response_zone = require(body, "zone", str, service=_SERVICE)
        note = f"forecast updated {body.get('updatedAt', 'unstated')}"
        readings = []
        for point in points:
            if not isinstance(point, dict):
                raise ProviderError(f"{_SERVICE}: forecast point is not an object: {point!r:.80}")
            readings.append(
                IntensityReading(
                    zone=response_zone,
                    g_co2_per_kwh=require(point, "carbonIntensity", float, service=_SERVICE),
                    signal="average",
                    source=self.name,
                    observed_at=require(point, "datetime", str, service=_SERVICE),
                    fetched_at=fetched_at,
                    is_estimated=True,
                    note=note,
                )
            )
        return readings

    def _get(self, endpoint: str, zone: str) -> dict[str, Any]:
        try:
            return get_json(
                f"{self._base_url}/v3/carbon-intensity/{endpoint}",
                service=_SERVICE,
                policy=self._policy,
                params={"zone": zone},
                headers={"auth-token": self._token},
            )
        except HttpStatusError as exc:
            if exc.status_code in (401, 403):
                raise ProviderError(
                    f"{exc} (check {TOKEN_ENV} and that your plan covers zone {zone!r})"
                ) from exc
            raise
