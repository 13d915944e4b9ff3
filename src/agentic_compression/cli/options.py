"""Options shared by several commands, declared once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

DataDirOption = Annotated[
    Path | None, typer.Option(help="Offline benchmark data (else $AGENTIC_COMPRESSION_DATA).")
]
CountryOption = Annotated[str, typer.Option(help="ISO code of the grid for CO2.")]
ZoneOption = Annotated[
    str | None, typer.Option(help="Grid zone for live intensity (else the country average).")
]
MeterOption = Annotated[
    str, typer.Option(help="Energy meter: auto, blended, nvml, rapl, codecarbon.")
]
