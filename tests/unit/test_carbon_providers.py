"""Electricity Maps, WattTime, the HTTP helper and the fallback chain, against real local servers.

Each stub is an ``http.server`` on 127.0.0.1 (ephemeral port) answering in the documented format of
the API (see docs/DESIGN.md, "Third-party API formats"), with scripted failures: 429 with
Retry-After, 5xx, slow replies, malformed bodies, 401.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from agentic_compression.carbon import (
    ElectricityMapsProvider,
    FallbackChain,
    HttpStatusError,
    ProviderError,
    ReadingCache,
    RetryPolicy,
    StaticTableProvider,
    WattTimeProvider,
    default_chain,
)
from agentic_compression.carbon.http import get_json

FAST = RetryPolicy(timeout_s=2.0, max_attempts=3, backoff_base_s=0.01, retry_after_max_s=5.0)

EM_LATEST = {
    "zone": "US-CAR-DUK",
    "carbonIntensity": 216,
    "datetime": "2024-03-06T19:00:00.000Z",
    "updatedAt": "2024-03-06T18:48:27.926Z",
    "createdAt": "2024-03-03T19:47:16.265Z",
    "emissionFactorType": "lifecycle",
    "isEstimated": True,
    "estimationMethod": "TIME_SLICER_AVERAGE",
}
EM_FORECAST = {
    "zone": "DE",
    "forecast": [
        {"carbonIntensity": 301, "datetime": "2024-03-06T20:00:00.000Z"},
        {"carbonIntensity": 287.5, "datetime": "2024-03-06T21:00:00.000Z"},
    ],
    "updatedAt": "2024-03-06T19:12:00.000Z",
}


def watttime_forecast(values: list[float], units: str = "lbs_co2_per_mwh") -> dict[str, Any]:
    return {
        "data": [
            {"point_time": f"2024-03-06T19:{5 * i:02d}:00+00:00", "value": value}
            for i, value in enumerate(values)
        ],
        "meta": {
            "data_point_period_seconds": 300,
            "region": "CAISO_NORTH",
            "signal_type": "co2_moer",
            "units": units,
            "model": {"date": "2023-03-01"},
            "generated_at": "2024-03-06T19:00:00+00:00",
            "warnings": [],
        },
    }


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: object = field(default_factory=dict)  # a str is sent as is, anything else as JSON
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


@dataclass(frozen=True)
class Received:
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]


class Stub:
    """A scripted HTTP server: per path, replies in order; the last one repeats."""

    def __init__(self, routes: dict[str, list[Reply]]) -> None:
        self.routes = {path: list(replies) for path, replies in routes.items()}
        self.received: list[Received] = []
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                with stub._lock:
                    stub.received.append(
                        Received(parts.path, parse_qs(parts.query), dict(self.headers.items()))
                    )
                    replies = stub.routes.get(parts.path, [Reply(404, "no such path")])
                    reply = replies.pop(0) if len(replies) > 1 else replies[0]
                time.sleep(reply.delay_s)
                body = reply.body if isinstance(reply.body, str) else json.dumps(reply.body)
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body.encode())))
                    self.end_headers()
                    self.wfile.write(body.encode())
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (the timeout tests)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        # A short poll interval keeps shutdown() (which waits for the next poll) fast.
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    def count(self, path: str) -> int:
        with self._lock:
            return sum(1 for request in self.received if request.path == path)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


Serve = Callable[[dict[str, list[Reply]]], Stub]


@pytest.fixture
def serve() -> Iterator[Serve]:
    stubs: list[Stub] = []

    def start(routes: dict[str, list[Reply]]) -> Stub:
        stubs.append(Stub(routes))
        return stubs[-1]

    yield start
    for stub in stubs:
        stub.close()


@pytest.fixture
def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# --- the shared HTTP helper -------------------------------------------------------------------


def test_get_json_retries_a_5xx_then_returns_the_body(serve: Serve) -> None:
    stub = serve({"/x": [Reply(500, "oops"), Reply(200, {"ok": 1})]})
    assert get_json(f"{stub.url}/x", service="Stub", policy=FAST) == {"ok": 1}
    assert stub.count("/x") == 2


def test_get_json_honours_retry_after_seconds_on_429(serve: Serve) -> None:
    stub = serve({"/x": [Reply(429, "slow down", {"Retry-After": "1"}), Reply(200, {"ok": 1})]})
    started = time.monotonic()
    assert get_json(f"{stub.url}/x", service="Stub", policy=FAST) == {"ok": 1}
    # The backoff alone would wait 0.01 s: the 1 s wait is the server's Retry-After.
    assert time.monotonic() - started >= 0.95
    assert stub.count("/x") == 2


def test_get_json_caps_a_long_retry_after(serve: Serve) -> None:
    stub = serve({"/x": [Reply(429, "", {"Retry-After": "3600"}), Reply(200, {"ok": 1})]})
    policy = RetryPolicy(timeout_s=2.0, max_attempts=2, backoff_base_s=0.01, retry_after_max_s=0.2)
    started = time.monotonic()
    assert get_json(f"{stub.url}/x", service="Stub", policy=policy) == {"ok": 1}
    assert 0.15 <= time.monotonic() - started < 2.0


def test_get_json_gives_up_after_max_attempts(serve: Serve) -> None:
    stub = serve({"/x": [Reply(503, "down")]})
    with pytest.raises(ProviderError, match=r"failed after 3 attempts; last: HTTP 503"):
        get_json(f"{stub.url}/x", service="Stub", policy=FAST)
    assert stub.count("/x") == 3


def test_get_json_does_not_retry_other_4xx(serve: Serve) -> None:
    stub = serve({"/x": [Reply(404, "zone unknown")]})
    with pytest.raises(HttpStatusError, match="HTTP 404: zone unknown") as caught:
        get_json(f"{stub.url}/x", service="Stub", policy=FAST)
    assert caught.value.status_code == 404
    assert stub.count("/x") == 1


def test_get_json_retries_a_timeout(serve: Serve) -> None:
    stub = serve({"/x": [Reply(200, {"ok": 1}, delay_s=1.0)]})
    policy = RetryPolicy(timeout_s=0.15, max_attempts=2, backoff_base_s=0.01)
    started = time.monotonic()
    with pytest.raises(ProviderError, match="ReadTimeout"):
        get_json(f"{stub.url}/x", service="Stub", policy=policy)
    assert time.monotonic() - started < 0.9
    assert stub.count("/x") == 2


def test_get_json_reports_a_refused_connection(closed_port_url: str) -> None:
    with pytest.raises(ProviderError, match="failed after 3 attempts; last: ConnectionError"):
        get_json(f"{closed_port_url}/x", service="Stub", policy=FAST)


@pytest.mark.parametrize(
    ("body", "message"),
    [("<html>bad gateway</html>", "not JSON: <html>bad gateway"), ([1, 2], "not an object")],
)
def test_get_json_rejects_a_malformed_body_without_retrying(
    serve: Serve, body: object, message: str
) -> None:
    stub = serve({"/x": [Reply(200, body)]})
    with pytest.raises(ProviderError, match=message):
        get_json(f"{stub.url}/x", service="Stub", policy=FAST)
    assert stub.count("/x") == 1


# --- Electricity Maps -------------------------------------------------------------------------


def test_electricitymaps_latest_maps_the_documented_response(serve: Serve) -> None:
    stub = serve({"/v3/carbon-intensity/latest": [Reply(200, EM_LATEST)]})
    provider = ElectricityMapsProvider("em-token", base_url=stub.url, policy=FAST)
    reading = provider.latest("US-CAR-DUK")
    assert reading.zone == "US-CAR-DUK"
    assert reading.g_co2_per_kwh == 216.0
    assert reading.signal == "average"
    assert reading.source == "electricitymaps"
    assert reading.observed_at == "2024-03-06T19:00:00.000Z"
    assert reading.is_estimated is True
    assert "lifecycle" in reading.note and "TIME_SLICER_AVERAGE" in reading.note
    (request,) = stub.received
    assert request.headers["auth-token"] == "em-token"
    assert request.query == {"zone": ["US-CAR-DUK"]}


def test_electricitymaps_forecast_returns_every_point(serve: Serve) -> None:
    stub = serve({"/v3/carbon-intensity/forecast": [Reply(200, EM_FORECAST)]})
    readings = ElectricityMapsProvider("t", base_url=stub.url, policy=FAST).forecast("DE")
    assert [(r.observed_at, r.g_co2_per_kwh) for r in readings] == [
        ("2024-03-06T20:00:00.000Z", 301.0),
        ("2024-03-06T21:00:00.000Z", 287.5),
    ]
    assert all(r.is_estimated and r.signal == "average" for r in readings)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {k: v for k, v in EM_LATEST.items() if k != "carbonIntensity"},
            "lacks field 'carbonIntensity'",
        ),
        ({**EM_LATEST, "carbonIntensity": None}, "'carbonIntensity' should be float, got NoneType"),
        ({**EM_LATEST, "carbonIntensity": "216"}, "'carbonIntensity' should be float, got str"),
    ],
)
def test_electricitymaps_rejects_missing_or_mistyped_fields(
    serve: Serve, body: dict[str, Any], message: str
) -> None:
    stub = serve({"/v3/carbon-intensity/latest": [Reply(200, body)]})
    with pytest.raises(ProviderError, match=message):
        ElectricityMapsProvider("t", base_url=stub.url, policy=FAST).latest("FR")


def test_electricitymaps_bad_token_is_not_retried_and_names_the_variable(serve: Serve) -> None:
    stub = serve({"/v3/carbon-intensity/latest": [Reply(401, {"message": "bad token"})]})
    with pytest.raises(ProviderError, match=r"HTTP 401.*ELECTRICITYMAPS_API_TOKEN"):
        ElectricityMapsProvider("wrong", base_url=stub.url, policy=FAST).latest("FR")
    assert stub.count("/v3/carbon-intensity/latest") == 1


def test_electricitymaps_token_comes_from_the_environment(
    serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    stub = serve({"/v3/carbon-intensity/latest": [Reply(200, EM_LATEST)]})
    monkeypatch.setenv("ELECTRICITYMAPS_API_TOKEN", "from-env")
    ElectricityMapsProvider(base_url=stub.url, policy=FAST).latest("US-CAR-DUK")
    assert stub.received[0].headers["auth-token"] == "from-env"
    monkeypatch.delenv("ELECTRICITYMAPS_API_TOKEN")
    with pytest.raises(ProviderError, match="set ELECTRICITYMAPS_API_TOKEN"):
        ElectricityMapsProvider(base_url=stub.url)


# --- WattTime -------------------------------------------------------------------------------


def watttime_stub(serve: Serve, forecast: list[Reply], logins: list[Reply] | None = None) -> Stub:
    routes = {
        "/login": logins or [Reply(200, {"token": "tok-1"})],
        "/v3/forecast": forecast,
    }
    return serve(routes)


def test_watttime_converts_lbs_per_mwh_and_labels_marginal(serve: Serve) -> None:
    stub = watttime_stub(serve, [Reply(200, watttime_forecast([1000.0, 800.0]))])
    provider = WattTimeProvider("alice", "s3cret", base_url=stub.url, policy=FAST)
    reading = provider.latest("CAISO_NORTH")
    assert reading.g_co2_per_kwh == pytest.approx(453.59237)
    assert reading.signal == "marginal"
    assert reading.source == "watttime"
    assert reading.zone == "CAISO_NORTH"
    assert reading.observed_at == "2024-03-06T19:00:00+00:00"
    assert "co2_moer forecast" in reading.note
    login, forecast = stub.received
    assert login.headers["Authorization"] == "Basic " + base64.b64encode(b"alice:s3cret").decode()
    assert forecast.headers["Authorization"] == "Bearer tok-1"
    assert forecast.query == {"region": ["CAISO_NORTH"], "signal_type": ["co2_moer"]}
    assert [r.g_co2_per_kwh for r in provider.forecast("CAISO_NORTH")] == pytest.approx(
        [453.59237, 362.873896]
    )


def test_watttime_reuses_its_token(serve: Serve) -> None:
    stub = watttime_stub(serve, [Reply(200, watttime_forecast([500.0]))])
    provider = WattTimeProvider("alice", "pw", base_url=stub.url, policy=FAST)
    provider.latest("CAISO_NORTH")
    provider.latest("CAISO_NORTH")
    assert (stub.count("/login"), stub.count("/v3/forecast")) == (1, 2)


def test_watttime_logs_in_again_on_401(serve: Serve) -> None:
    stub = watttime_stub(
        serve,
        forecast=[Reply(401, "expired"), Reply(200, watttime_forecast([500.0]))],
        logins=[Reply(200, {"token": "tok-1"}), Reply(200, {"token": "tok-2"})],
    )
    reading = WattTimeProvider("a", "b", base_url=stub.url, policy=FAST).latest("CAISO_NORTH")
    assert reading.g_co2_per_kwh == pytest.approx(500 * 0.45359237)
    assert (stub.count("/login"), stub.count("/v3/forecast")) == (2, 2)
    assert stub.received[-1].headers["Authorization"] == "Bearer tok-2"


def test_watttime_stops_after_a_second_401(serve: Serve) -> None:
    stub = watttime_stub(serve, [Reply(401, "no access to region")])
    with pytest.raises(HttpStatusError, match="HTTP 401"):
        WattTimeProvider("a", "b", base_url=stub.url, policy=FAST).latest("PJM")
    assert (stub.count("/login"), stub.count("/v3/forecast")) == (2, 2)


def test_watttime_refuses_units_it_cannot_convert(serve: Serve) -> None:
    stub = watttime_stub(serve, [Reply(200, watttime_forecast([42.0], units="percentile"))])
    with pytest.raises(ProviderError, match=r"units 'percentile'.*cannot be converted"):
        WattTimeProvider("a", "b", base_url=stub.url, policy=FAST).latest("CAISO_NORTH")


def test_watttime_refused_login_names_the_variables(serve: Serve) -> None:
    stub = watttime_stub(serve, [Reply(200, {})], logins=[Reply(403, "forbidden")])
    with pytest.raises(ProviderError, match=r"login refused \(HTTP 403\).*WATTTIME_USERNAME"):
        WattTimeProvider("a", "wrong", base_url=stub.url, policy=FAST).latest("CAISO_NORTH")
    assert (stub.count("/login"), stub.count("/v3/forecast")) == (1, 0)


def test_watttime_malformed_forecast_is_a_provider_error(serve: Serve) -> None:
    stub = watttime_stub(
        serve, [Reply(200, {"data": [{"point_time": "t"}], "meta": {"units": "lbs_co2_per_mwh"}})]
    )
    with pytest.raises(ProviderError, match="lacks field 'value'"):
        WattTimeProvider("a", "b", base_url=stub.url, policy=FAST).latest("CAISO_NORTH")


# --- the fallback chain -----------------------------------------------------------------------


def test_chain_falls_back_in_order_and_records_why(serve: Serve) -> None:
    em = serve({"/v3/carbon-intensity/latest": [Reply(500, "boom")]})
    wt = watttime_stub(serve, [Reply(200, watttime_forecast([1000.0]))])
    chain = FallbackChain(
        [
            ElectricityMapsProvider("t", base_url=em.url, policy=FAST),
            WattTimeProvider("a", "b", base_url=wt.url, policy=FAST),
            StaticTableProvider(),
        ],
        cache=None,
    )
    result = chain.latest("CAISO_NORTH")
    assert result.reading.source == "watttime"
    assert result.reading.signal == "marginal"
    assert result.from_cache is False
    assert [f.provider for f in result.failures] == ["electricitymaps"]
    assert "HTTP 500" in result.failures[0].error
    assert em.count("/v3/carbon-intensity/latest") == 3


def test_chain_ends_on_the_static_table_when_apis_are_down(closed_port_url: str) -> None:
    chain = FallbackChain(
        [
            ElectricityMapsProvider("t", base_url=closed_port_url, policy=FAST),
            WattTimeProvider("a", "b", base_url=closed_port_url, policy=FAST),
            StaticTableProvider(),
        ],
        cache=None,
    )
    result = chain.latest("FR")
    assert result.reading.zone == "FRA"
    assert result.reading.source.startswith("codecarbon-static:")
    assert [f.provider for f in result.failures] == ["electricitymaps", "watttime"]
    assert all("ConnectionError" in f.error for f in result.failures)


def test_chain_raises_with_every_failure_when_nothing_answers(closed_port_url: str) -> None:
    chain = FallbackChain(
        [
            ElectricityMapsProvider("t", base_url=closed_port_url, policy=FAST),
            StaticTableProvider(),
        ],
        cache=None,
    )
    with pytest.raises(ProviderError, match=r"electricitymaps: .*; codecarbon-static: zone 'ZZ'"):
        chain.latest("ZZ")


def test_chain_cache_hit_makes_no_request(serve: Serve, tmp_path: Path) -> None:
    stub = serve({"/v3/carbon-intensity/latest": [Reply(200, EM_LATEST)]})
    cache = ReadingCache(tmp_path / "carbon.sqlite")
    provider = ElectricityMapsProvider("t", base_url=stub.url, policy=FAST)
    first = FallbackChain([provider], cache).latest("US-CAR-DUK")
    second = FallbackChain([provider], cache).latest("US-CAR-DUK")
    assert stub.count("/v3/carbon-intensity/latest") == 1
    assert (first.from_cache, second.from_cache) == (False, True)
    assert second.reading == first.reading  # fetched_at included: the original fetch time


def test_chain_forecast_skips_providers_without_one(serve: Serve) -> None:
    stub = serve({"/v3/carbon-intensity/forecast": [Reply(200, EM_FORECAST)]})
    chain = FallbackChain(
        [StaticTableProvider(), ElectricityMapsProvider("t", base_url=stub.url, policy=FAST)],
        cache=None,
    )
    result = chain.forecast("DE")
    assert len(result.readings) == 2
    assert [f.provider for f in result.failures] == ["codecarbon-static"]
    assert "no forecast" in result.failures[0].error


def test_default_chain_uses_the_apis_whose_credentials_are_set(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("ELECTRICITYMAPS_API_TOKEN", "WATTTIME_USERNAME", "WATTTIME_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    cache = ReadingCache(tmp_path / "c.sqlite")
    assert [p.name for p in default_chain(cache).providers] == ["codecarbon-static"]
    monkeypatch.setenv("WATTTIME_USERNAME", "a")
    assert [p.name for p in default_chain(cache).providers] == ["codecarbon-static"]
    monkeypatch.setenv("WATTTIME_PASSWORD", "b")
    monkeypatch.setenv("ELECTRICITYMAPS_API_TOKEN", "t")
    assert [p.name for p in default_chain(cache).providers] == [
        "electricitymaps",
        "watttime",
        "codecarbon-static",
    ]
