"""The one HTTP GET used by the API providers: timeouts, bounded retries, JSON checking.

Retried: connection errors, timeouts, HTTP 429 and 5xx (a ``Retry-After`` given in seconds is
honoured, capped). Not retried: any other 4xx, which :class:`HttpStatusError` reports with its
status so a caller can react (WattTime logs in again on 401). Every failure ends as a
:class:`ProviderError`.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import requests

from agentic_compression.carbon.intensity import ProviderError

T = TypeVar("T")


class HttpStatusError(ProviderError):
    """The server answered with a non-retryable HTTP error status."""

    def __init__(self, message: str, status_code: int) -> None:
        super().__init__(message)
        self.status_code = status_code


@dataclass(frozen=True)
class RetryPolicy:
    """How long to wait for a server and how often to try again.

    The default worst case (4 attempts of 10 s, waits 0.5 + 1 + 2 s) stays under a minute, which a
    compression run can afford before it falls back to the next provider.

    Example:
        >>> RetryPolicy(backoff_base_s=0.01).backoff_s(attempt=3)
        0.04
    """

    timeout_s: float = 10.0
    max_attempts: int = 4
    backoff_base_s: float = 0.5
    backoff_max_s: float = 8.0
    retry_after_max_s: float = 30.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")
        if self.timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {self.timeout_s}")

    def backoff_s(self, attempt: int) -> float:
        """Wait after failed attempt ``attempt`` (1-based): base * 2**(attempt - 1), capped."""
        return float(min(self.backoff_max_s, self.backoff_base_s * 2 ** (attempt - 1)))


def get_json(
    url: str,
    *,
    service: str,
    policy: RetryPolicy,
    params: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    auth: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """GET ``url`` and return its JSON object, retrying transient failures per ``policy``.

    ``service`` names the API in error messages, e.g. ``"Electricity Maps"``.

    Example:
        >>> get_json("https://api.electricitymap.org/v3/carbon-intensity/latest",
        ...          service="Electricity Maps", policy=RetryPolicy(),
        ...          params={"zone": "FR"}, headers={"auth-token": "..."})  # doctest: +SKIP
    """
    last_failure = ""
    for attempt in range(1, policy.max_attempts + 1):
        wait_s = policy.backoff_s(attempt)
        try:
            response = requests.get(
                url,
                params=params,
                headers=headers,
                auth=auth,
                timeout=policy.timeout_s,
                allow_redirects=False,
            )
        except (requests.ConnectionError, requests.Timeout) as exc:
            last_failure = f"{type(exc).__name__}: {exc}"
        except requests.RequestException as exc:
            raise ProviderError(f"{service}: request to {url} failed: {exc}") from exc
        else:
            status = response.status_code
            if 200 <= status < 300:
                return _json_object(response, service=service, url=url)
            if status != 429 and status < 500:
                raise HttpStatusError(
                    f"{service}: {url} answered HTTP {status}: {_snippet(response.text)}", status
                )
            last_failure = f"HTTP {status}"
            retry_after_s = _retry_after_s(response)
            if retry_after_s is not None:
                wait_s = min(retry_after_s, policy.retry_after_max_s)
        if attempt < policy.max_attempts:
            time.sleep(wait_s)
    raise ProviderError(
        f"{service}: {url} failed after {policy.max_attempts} attempts; last: {last_failure}"
    )


def require(obj: Mapping[str, Any], key: str, kind: type[T], *, service: str) -> T:
    """``obj[key]`` checked to be a ``kind``; a missing or mistyped field raises ProviderError.

    ``int`` is accepted where ``float`` is asked (JSON has one number type), ``bool`` is not.

    Example:
        >>> require({"carbonIntensity": 216}, "carbonIntensity", float, service="Electricity Maps")
        216.0
    """
    if key not in obj:
        raise ProviderError(f"{service}: response lacks field {key!r} (has {sorted(obj)})")
    value = obj[key]
    if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
        return cast(T, float(value))
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise ProviderError(
            f"{service}: field {key!r} should be {kind.__name__}, got {type(value).__name__}"
            f" {_snippet(repr(value))}"
        )
    return value


def _json_object(response: requests.Response, *, service: str, url: str) -> dict[str, Any]:
    try:
        body = response.json()
    except (json.JSONDecodeError, ValueError) as exc:
        raise ProviderError(
            f"{service}: {url} returned a body that is not JSON: {_snippet(response.text)}"
        ) from exc
    if not isinstance(body, dict):
        raise ProviderError(
            f"{service}: {url} returned JSON that is not an object: {_snippet(body)}"
        )
    return body


def _retry_after_s(response: requests.Response) -> float | None:
    # Only the delta-seconds form; an HTTP-date falls back to exponential backoff.
    value = response.headers.get("Retry-After", "").strip()
    try:
        seconds = float(value)
    except ValueError:
        return None
    return max(0.0, seconds) if math.isfinite(seconds) else None


def _snippet(value: object, limit: int = 200) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[:limit] + "..."
