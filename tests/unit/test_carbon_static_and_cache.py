"""The offline CodeCarbon table provider and the SQLite reading cache."""

from __future__ import annotations

import importlib.metadata
import sqlite3
import time
import warnings
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from agentic_compression.carbon import (
    IntensityReading,
    ProviderError,
    ReadingCache,
    StaticTableProvider,
)


@pytest.fixture(scope="module")
def codecarbon_mix() -> dict[str, Any]:
    """CodeCarbon's own reading of its global energy-mix table."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pynvml's deprecation notice on import
        from codecarbon.input import DataSource

        return DataSource().get_global_energy_mix_data()


@pytest.mark.parametrize(
    ("zone", "alpha_3"), [("TW", "TWN"), ("TWN", "TWN"), ("fr", "FRA"), ("IND", "IND")]
)
def test_static_table_matches_codecarbon(
    codecarbon_mix: dict[str, Any], zone: str, alpha_3: str
) -> None:
    reading = StaticTableProvider().latest(zone)
    entry = codecarbon_mix[alpha_3]
    assert reading.zone == alpha_3
    assert reading.g_co2_per_kwh == entry["carbon_intensity"]
    assert reading.signal == "average"
    assert reading.source == f"codecarbon-static:{importlib.metadata.version('codecarbon')}"
    assert reading.observed_at == str(entry["year"])
    assert reading.note.startswith(f"annual average {entry['year']} for {entry['country_name']}")
    assert reading.is_estimated is False


def test_static_table_values_for_two_countries() -> None:
    # Values of CodeCarbon 3.3.2's table; a new CodeCarbon release may change them.
    if importlib.metadata.version("codecarbon") != "3.3.2":
        pytest.skip("values below are those of codecarbon 3.3.2")
    provider = StaticTableProvider()
    assert provider.latest("TW").g_co2_per_kwh == 642.378
    assert provider.latest("FRA").g_co2_per_kwh == 56.039


def test_static_table_gives_the_country_figure_for_a_sub_national_zone() -> None:
    reading = StaticTableProvider().latest("US-CAL-CISO")
    assert reading.zone == "USA"
    assert "country-level figure for sub-national zone 'US-CAL-CISO'" in reading.note


@pytest.mark.parametrize("zone", ["XX", "ZZZ", "CAISO_NORTH", ""])
def test_static_table_unknown_zone_is_a_one_line_error(zone: str) -> None:
    with pytest.raises(ProviderError, match="not in CodeCarbon's country table") as caught:
        StaticTableProvider().latest(zone)
    assert "\n" not in str(caught.value)


def test_static_table_has_no_forecast() -> None:
    with pytest.raises(ProviderError, match="codecarbon-static has no forecast"):
        StaticTableProvider().forecast("FR")


def reading(value: float = 216.0) -> IntensityReading:
    return IntensityReading(
        zone="FR",
        g_co2_per_kwh=value,
        signal="average",
        source="electricitymaps",
        observed_at="2024-03-06T19:00:00.000Z",
        fetched_at="2024-03-06T19:01:02+00:00",
        is_estimated=True,
        note="lifecycle emission factors",
    )


def test_cache_round_trip_keeps_the_reading_and_its_fetch_time(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "carbon.sqlite"
    ReadingCache(path).put("electricitymaps", "FR", "latest", [reading()])
    assert ReadingCache(path).get("electricitymaps", "FR", "latest") == [reading()]


def test_cache_keys_on_provider_zone_and_kind(tmp_path: Path) -> None:
    cache = ReadingCache(tmp_path / "carbon.sqlite")
    cache.put("electricitymaps", "FR", "latest", [reading(1.0)])
    cache.put("electricitymaps", "FR", "forecast", [reading(2.0), reading(3.0)])
    assert cache.get("electricitymaps", "FR", "forecast") == [reading(2.0), reading(3.0)]
    assert cache.get("watttime", "FR", "latest") is None
    assert cache.get("electricitymaps", "DE", "latest") is None
    cache.put("electricitymaps", "FR", "latest", [reading(4.0)])
    assert cache.get("electricitymaps", "FR", "latest") == [reading(4.0)]


def test_cache_entries_expire_after_the_ttl(tmp_path: Path) -> None:
    cache = ReadingCache(tmp_path / "carbon.sqlite", ttl_s=0.2)
    cache.put("electricitymaps", "FR", "latest", [reading()])
    assert cache.get("electricitymaps", "FR", "latest") == [reading()]
    time.sleep(0.3)
    assert cache.get("electricitymaps", "FR", "latest") is None


def test_cache_default_path_is_under_the_package_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTIC_COMPRESSION_HOME", str(tmp_path))
    cache = ReadingCache()
    assert cache.get("electricitymaps", "FR", "latest") is None
    assert not (tmp_path / "carbon_cache.sqlite").exists()  # reading an empty cache writes nothing
    cache.put("electricitymaps", "FR", "latest", [reading()])
    assert cache.path == tmp_path / "carbon_cache.sqlite"
    assert cache.path.is_file()


def test_reading_rejects_impossible_values() -> None:
    with pytest.raises(ValueError, match="finite and >= 0"):
        reading(-1.0)
    with pytest.raises(ValueError, match="finite and >= 0"):
        reading(float("nan"))


def test_cache_treats_an_unreadable_row_as_a_miss(tmp_path: Path) -> None:
    cache = ReadingCache(tmp_path / "carbon.sqlite")
    cache.put("electricitymaps", "FR", "latest", [reading()])
    with closing(sqlite3.connect(cache.path)) as connection, connection:
        connection.execute("UPDATE readings SET readings_json = ?", ('[{"zone": "FR"}]',))
    assert cache.get("electricitymaps", "FR", "latest") is None
