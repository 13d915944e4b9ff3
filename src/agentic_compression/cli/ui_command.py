"""``agentic-compress ui``: the web UI (Streamlit), bound to 127.0.0.1 unless told otherwise.

Example:
    >>> import typer
    >>> app = typer.Typer()
    >>> register(app)
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from agentic_compression.errors import UserInputError


def ui(
    host: Annotated[
        str, typer.Option(help="Address to bind (0.0.0.0 exposes the UI to the network).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8501,
    runs_dir: Annotated[Path, typer.Option(help="Folder of run outputs.")] = Path("runs"),
    store_url: Annotated[
        str | None, typer.Option(help="Results store URL [default: <runs-dir>/results.sqlite].")
    ] = None,
    experiments_dir: Annotated[Path, typer.Option(help="Folder of experiment outputs.")] = Path(
        "experiments"
    ),
) -> None:
    """Start the web UI: launch and watch runs, explore fronts, run experiments, compare."""
    if importlib.util.find_spec("streamlit") is None:
        raise UserInputError("the UI needs Streamlit: pip install 'agentic-compression[ui]'")
    if not 0 < port < 65536:
        raise UserInputError(f"--port must be in 1-65535, got {port}")
    app = Path(__file__).resolve().parents[1] / "ui" / "app.py"
    env = {
        **os.environ,
        "AGENTIC_COMPRESSION_UI_RUNS": str(runs_dir.resolve()),
        "AGENTIC_COMPRESSION_UI_EXPERIMENTS": str(experiments_dir.resolve()),
        "AGENTIC_COMPRESSION_UI_STORE": store_url or "",
    }
    command = [sys.executable, "-m", "streamlit", "run", str(app), "--server.address", host,
               "--server.port", str(port), "--browser.gatherUsageStats", "false",
               "--server.headless", "true", "--client.toolbarMode", "minimal"]  # fmt: skip
    print(f"agentic-compression UI on http://{host}:{port} (Ctrl-C stops it)", flush=True)
    # This process becomes Streamlit: Ctrl-C and a SIGTERM reach the server itself, and no
    # orphaned server is left behind when this command is stopped.
    os.execve(sys.executable, command, env)


def register(app: typer.Typer) -> None:
    app.command("ui")(ui)
