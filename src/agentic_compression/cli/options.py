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


def plain(value: object) -> str:
    """``value`` as text rich prints verbatim: user, planner and provider text may hold ``[...]``
    (a zone ``[/x]``, an install hint ``[postgres]``) that rich would read as markup."""
    from rich.markup import escape

    return escape(str(value))


def check_writable(path: Path, option: str, *, folder: bool = False) -> None:
    """Refuse, before any work, an output the process cannot write (``path`` is a file, or with
    ``folder`` a folder to create files in)."""
    import os
    import tempfile

    from agentic_compression.errors import UserInputError

    target = path if folder else path.parent
    try:
        if path.exists() and (path.is_dir() != folder):
            raise IsADirectoryError(0, "a folder" if path.is_dir() else "a file, not a folder")
        target.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target, prefix=".write-check-"):
            pass
        if not folder and path.exists() and not os.access(path, os.W_OK):
            raise PermissionError(0, "read-only file")
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise UserInputError(
            f"{option} {str(path)!r} cannot be written ({reason}); choose another place"
        ) from None
