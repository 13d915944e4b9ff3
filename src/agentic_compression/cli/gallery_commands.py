"""``agentic-compress gallery add RUN``, ``gallery compare RUN`` and ``gallery list``.

RUN is a run id (looked up in ``--runs-dir``) or a run's folder. The gallery lives outside git
(``$AGENTIC_COMPRESSION_GALLERY``, else ``~/.cache/agentic_compression/gallery``); see
:mod:`agentic_compression.results.gallery`.

Example:
    >>> import typer
    >>> app = typer.Typer()
    >>> register(app)
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from agentic_compression.cli.options import plain
from agentic_compression.errors import UserInputError

console = Console()
gallery_app = typer.Typer(
    help="Representative runs kept outside git, and differences against them."
)

RunArg = Annotated[str, typer.Argument(help="A run id (in --runs-dir) or a run's folder.")]
RunsDir = Annotated[Path, typer.Option(help="Folder of run outputs.")]


def _folder(run: str, runs_dir: Path) -> Path:
    path = Path(run)
    if path.is_dir():
        return path
    from agentic_compression.workflow.runner import check_run_id

    folder = runs_dir / check_run_id(run)
    if not folder.is_dir():
        raise UserInputError(
            f"no run folder {str(folder)!r}; pass a run id from `agentic-compress runs` or a folder"
        )
    return folder


@gallery_app.command("add")
def add(
    run: RunArg,
    name: Annotated[str | None, typer.Option(help="Entry name [default: the run id].")] = None,
    replace: Annotated[bool, typer.Option(help="Replace an entry of the same name.")] = False,
    runs_dir: RunsDir = Path("runs"),
) -> None:
    """Copy a finished run into the gallery."""
    from agentic_compression.results import gallery

    target = gallery.add(_folder(run, runs_dir), name, replace=replace)
    console.print(f"added {plain(target.name)} to the gallery ({plain(target)})", highlight=False)


@gallery_app.command("list")
def list_entries() -> None:
    """The gallery's entries."""
    from agentic_compression.results import gallery

    table = Table(title=f"Gallery ({plain(gallery.gallery_dir())})")
    for column in ("name", "model", "machine", "added", "run"):
        table.add_column(column)
    for e in gallery.entries():
        table.add_row(*(plain(e[k]) for k in ("name", "model", "machine", "added_at", "run_id")))
    console.print(table)


@gallery_app.command("compare")
def compare(
    run: RunArg,
    against: Annotated[
        str | None, typer.Option(help="One entry [default: every entry of the run's model].")
    ] = None,
    runs_dir: RunsDir = Path("runs"),
) -> None:
    """Differences of a run against the gallery: the candidates both measured, and the picks."""
    from agentic_compression.results import gallery

    results = gallery.load_run(_folder(run, runs_dir))
    for c in gallery.compare(results, against):
        settings = (
            "same evaluation settings" if c.same_settings else "DIFFERENT evaluation settings"
        )
        table = Table(
            title=f"vs {plain(c.entry['name'])} ({plain(c.entry['machine'])}; {settings})",
            caption=f"pick: this run {plain(c.run_pick)}, gallery {plain(c.entry_pick)}",
        )
        for column in ("candidate", "Δ accuracy", "latency ×", "size ×", "energy/1k tok ×"):
            table.add_column(column, justify="left" if column == "candidate" else "right")
        for d in c.shared:
            table.add_row(
                plain(d.label), f"{d.accuracy_delta:+.4f}", f"{d.latency_ratio:.3f}",
                f"{d.size_ratio:.3f}", f"{d.energy_ratio:.3f}",
            )  # fmt: skip
        if not c.shared:
            table.add_row("(no candidate measured by both)", "", "", "", "")
        console.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(gallery_app, name="gallery")
