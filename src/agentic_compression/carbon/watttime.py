"""WattTime v3: marginal operating emissions rate (MOER) per balancing-authority region.

MOER is the intensity of the generator that responds to one more kWh of demand, not the grid
average: readings are labelled ``signal="marginal"``. API: ``GET {base}/login`` with HTTP Basic auth
gives a bearer token valid 30 minutes;
``GET {base}/v3/forecast?region=CAISO_NORTH&signal_type=co2_moer`` gives 5-minute points in
lbs CO2/MWh. The latest value is the forecast's first point. Zones are WattTime region codes such as
``CAISO_NORTH``.
"""

from __future__ import annotations

import os
import time
from typing import Any

from agentic_compression.carbon.http import HttpStatusError, RetryPolicy, get_json, require
from agentic_compression.carbon.intensity import (
    CarbonIntensityProvider,
    IntensityReading,
    ProviderError,
    utc_now_iso,
)

DEFAULT_BASE_URL = "https://api.watttime.org"
USERNAME_ENV = "WATTTIME_USERNAME"
PASSWORD_ENV = "WATTTIME_PASSWORD"
# 1 lb = 453.59237 g and 1 MWh = 1000 kWh.
G_PER_KWH_PER_LBS_PER_MWH = 0.45359237
# WattTime tokens live 30 minutes; renewing a minute early avoids a 401 round trip at the edge.
TOKEN_LIFETIME_S = 29 * 60
_SERVICE = "WattTime"
_CONVERTIBLE_UNITS = "lbs_co2_per_mwh"


class WattTimeProvider(CarbonIntensityProvider):
    """Marginal carbon intensity (MOER) from the WattTime API.

    Credentials come from the arguments or ``WATTTIME_USERNAME`` / ``WATTTIME_PASSWORD``.

    Example:
        >>> provider = WattTimeProvider(username="me", password="...")  # doctest: +SKIP
        >>> provider.latest("CAISO_NORTH").signal  # doctest: +SKIP
        'marginal'
    """

    name = "watttime"

    def __init__(
        self,
        username: str | None = None,
        password: str | None = None,
        *,
        base_url: str = DEFAULT_BASE_URL,
        policy: RetryPolicy | None = None,
    ) -> None:
        user = (username or os.environ.get(USERNAME_ENV, "")).strip()
        secret = (password or os.environ.get(PASSWORD_ENV, "")).strip()
        if not (user and secret):
            raise ProviderError(
                f"{_SERVICE} needs credentials: pass username=/password= or set {USERNAME_ENV} "
                f"and {PASSWORD_ENV}"
            )
        self._credentials = (user, secret)
        self._base_url = base_url.rstrip("/")
        self._policy = policy or RetryPolicy()
        self._token = ""
        self._token_expires_at = 0.0  # time.monotonic() seconds

    def latest(self, zone: str) -> IntensityReading:
        return self.forecast(zone)[0]

    def forecast(self, zone: str) -> list[IntensityReading]:
        body = self._get("/v3/forecast", {"region": zone, "signal_type": "co2_moer"})
        fetched_at = utc_now_iso()
        meta = require(body, "meta", dict, service=_SERVICE)
        units = require(meta, "units", str, service=_SERVICE)
        if units != _CONVERTIBLE_UNITS:
            raise ProviderError(
                f"{_SERVICE}: region {zone!r} reports units {units!r}, which cannot be converted "
                f"to gCO2/kWh (expected {_CONVERTIBLE_UNITS!r})"
            )
        points = require(body, "data", list, service=_SERVICE)
        if not points:
            raise ProviderError(f"{_SERVICE}: empty forecast for region {zone!r}")
        model = meta.get("model")
        notes = [
            f"co2_moer forecast point generated {meta.get('generated_at', 'unstated')}",
            f"model {model.get('date', 'unstated') if isinstance(model, dict) else 'unstated'}",
        ]
        if meta.get("warnings"):
            notes.append(f"warnings {meta['warnings']}")
        readings = []
        for point in points:
            if not isinstance(point, dict):
                raise ProviderError(f"{_SERVICE}: forecast point is not an object: {point!r:.80}")
            lbs_per_mwh = require(point, "value", float, service=_SERVICE)
            readings.append(
                IntensityReading(
                    zone=zone,
                    g_co2_per_kwh=lbs_per_mwh * G_PER_KWH_PER_LBS_PER_MWH,
                    signal="marginal",
                    source=self.name,
                    observed_at=require(point, "point_time", str, service=_SERVICE),
                    fetched_at=fetched_at,
                    is_estimated=True,
                    note="; ".join(notes),
                )
            )
        return readings

    def _get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        url = f"{self._base_url}{path}"
        try:
            return self._get_authorised(url, params)
        except HttpStatusError as exc:
            if exc.status_code != 401:
                raise
        # The token was revoked or expired early: log in once more, then give up on a second 401.
        self._token = ""
        return self._get_authorised(url, params)

    def _get_authorised(self, url: str, params: dict[str, str]) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self._current_token()}"}
        return get_json(url, service=_SERVICE, policy=self._policy, params=params, headers=headers)

    def _current_token(self) -> str:
        if self._token and time.monotonic() < self._token_expires_at:
            return self._token
        try:
            body = get_json(
                f"{self._base_url}/login",
                service=_SERVICE,
                policy=self._policy,
                auth=self._credentials,
            )
        except HttpStatusError as exc:
            raise ProviderError(
                f"{_SERVICE} login refused (HTTP {exc.status_code}): check {USERNAME_ENV} and "
                f"{PASSWORD_ENV}"
            ) from exc
        self._token = require(body, "token", str, service=_SERVICE)
        self._token_expires_at = time.monotonic() + TOKEN_LIFETIME_S
        return self._token
