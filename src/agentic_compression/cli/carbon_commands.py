"""Energy meter and grid-intensity choices shared by the commands, and ``agentic-compress carbon``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from agentic_compression.cli.options import plain
from agentic_compression.errors import UserInputError

if TYPE_CHECKING:
    from agentic_compression.carbon.chain import ChainResult
    from agentic_compression.carbon.meter import EnergyMeter

err_console = Console(stderr=True)


def intensity_for_zone(zone: str) -> ChainResult:
    """The current grid intensity of ``zone`` from the first provider that answers.

    Each provider that failed before it is reported on stderr (a fallback is never silent).
    """
    from agentic_compression.carbon import ProviderError, default_chain

    try:
        result = default_chain().latest(zone)
    except ProviderError as error:
        raise UserInputError(f"no carbon intensity for zone {zone!r}: {error}") from None
    for failure in result.failures:
        err_console.print(
            f"[yellow]carbon intensity: {plain(failure.provider)} gave no reading "
            f"({plain(failure.error)}); "
            "used the next source[/]",
            highlight=False,
        )
    return result


def build_meter(country: str, zone: str | None, prefer: str) -> EnergyMeter:
    """The energy meter for a command: ``prefer`` (auto picks the best here), CO2 at ``zone``'s
    current intensity when given, else at ``country``'s annual average."""
    from agentic_compression.carbon.meter_factory import make_energy_meter

    intensity = intensity_for_zone(zone).reading if zone else None
    return make_energy_meter(country, intensity=intensity, prefer=prefer)


def register(app: typer.Typer) -> None:
    @app.command()
    def carbon(
        zone: Annotated[str, typer.Option(help="Grid zone: FR, US-CAL-CISO, CAISO_NORTH, TW ...")],
    ) -> None:
        """Print the current carbon intensity of a grid zone, with its source and timestamp."""
        result = intensity_for_zone(zone)
        reading = result.reading
        console = Console()
        console.print(
            f"{plain(reading.zone)}: [bold]{reading.g_co2_per_kwh:.1f} gCO2eq/kWh[/] "
            f"({plain(reading.signal)})",
            highlight=False,
        )
        console.print(
            f"source: {reading.source}{' (cached)' if result.from_cache else ''}", markup=False
        )
        console.print(
            f"observed: {reading.observed_at}; fetched: {reading.fetched_at}", markup=False
        )
        if reading.is_estimated:
            console.print("the source marks this value as estimated")
        if reading.note:
            console.print(f"note: {reading.note}", highlight=False, markup=False)
