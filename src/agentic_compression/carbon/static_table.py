"""Offline annual-average carbon intensity per country, from the table CodeCarbon ships.

The data is CodeCarbon's ``data/private_infra/global_energy_mix.json``: one entry per ISO 3166
alpha-3 country with ``carbon_intensity`` (gCO2eq/kWh) and the ``year`` it describes (mostly
2022-2023 in CodeCarbon 3.3.2). The file is read from the installed package without importing
CodeCarbon, whose ``__init__`` loads its trackers and pynvml.

Zones may be alpha-3 (``TWN``, as CodeCarbon), alpha-2 (``TW``), or an Electricity Maps sub-national
zone whose key starts with the country's alpha-2 code (``US-CAL-CISO``, ``SE-SE3``): the last gets
the country average, and the reading's zone and note say so.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
from functools import cached_property
from pathlib import Path
from typing import Any

from agentic_compression.carbon.intensity import (
    CarbonIntensityProvider,
    IntensityReading,
    ProviderError,
    utc_now_iso,
)

_TABLE_IN_PACKAGE = ("data", "private_infra", "global_energy_mix.json")


class StaticTableProvider(CarbonIntensityProvider):
    """Annual average grid intensity per country; works offline, never raises for a known country.

    Example:
        >>> reading = StaticTableProvider().latest("TW")
        >>> reading.zone, reading.source.startswith("codecarbon-static:")
        ('TWN', True)
    """

    name = "codecarbon-static"

    @cached_property
    def _table(self) -> dict[str, dict[str, Any]]:
        path = codecarbon_table_path()
        try:
            table = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ProviderError(f"cannot read CodeCarbon's table {path}: {exc}") from exc
        if not isinstance(table, dict):
            raise ProviderError(f"CodeCarbon's table {path} is not a JSON object")
        return table

    @cached_property
    def _source(self) -> str:
        return f"{self.name}:{importlib.metadata.version('codecarbon')}"

    def latest(self, zone: str) -> IntensityReading:
        country = self._country_code(zone)
        entry = self._table[country]
        value = entry.get("carbon_intensity")
        if not isinstance(value, int | float):
            raise ProviderError(f"CodeCarbon's table has no carbon_intensity for {country}")
        year = entry.get("year")
        year_text = str(year) if isinstance(year, int) else "year unstated"
        note = f"annual average {year_text} for {entry.get('country_name', country)}"
        requested = zone.strip().upper()
        if "-" in requested:
            note += f" (country-level figure for sub-national zone {zone!r})"
        elif requested != country:
            note += f" (requested zone {zone!r})"
        return IntensityReading(
            zone=country,
            g_co2_per_kwh=float(value),
            signal="average",
            source=self._source,
            # ISO 8601 allows a year alone; the datum is an annual figure, not an instant.
            observed_at=str(year) if isinstance(year, int) else "",
            fetched_at=utc_now_iso(),
            is_estimated=False,
            note=note,
        )

    def _country_code(self, zone: str) -> str:
        code = zone.strip().upper()
        if len(code) == 3 and code in self._table:
            return code
        alpha_2 = code.split("-", 1)[0]
        if len(alpha_2) == 2:
            import pycountry  # deferred: it loads its ISO database when first used

            country = pycountry.countries.get(alpha_2=alpha_2)
            if country is not None and country.alpha_3 in self._table:
                return str(country.alpha_3)
        raise ProviderError(
            f"zone {zone!r} is not in CodeCarbon's country table: use an ISO 3166 alpha-2 or "
            f"alpha-3 country code such as 'FR' or 'FRA'"
        )


def codecarbon_table_path() -> Path:
    """Path of CodeCarbon's ``global_energy_mix.json`` in the installed package."""
    spec = importlib.util.find_spec("codecarbon")
    if spec is None or not spec.submodule_search_locations:
        raise ProviderError("codecarbon is not installed: pip install 'codecarbon>=3,<4'")
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*_TABLE_IN_PACKAGE)
    if not path.is_file():
        raise ProviderError(f"codecarbon {importlib.metadata.version('codecarbon')} lacks {path}")
    return path
