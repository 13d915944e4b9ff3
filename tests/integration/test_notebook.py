"""The notebook (notebooks/compression_cycle.ipynb) runs top to bottom on the embedded model:
search, front, export, serving the chosen GGUF (about 3 minutes on 2 cores)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "compression_cycle.ipynb"


def test_notebook_runs_the_whole_cycle(benchmarks_dir: Path, tmp_path: Path) -> None:
    import nbformat
    from nbclient import NotebookClient

    from agentic_compression.runtimes import installed_runtimes

    if "llamacpp" not in installed_runtimes():
        pytest.skip("the notebook serves a GGUF: llama.cpp is not installed")
    os.environ["NOTEBOOK_WORKDIR"] = str(tmp_path)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(notebook, timeout=900, kernel_name="python3").execute()
    outputs = "\n".join(
        o.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
        for o in cell.get("outputs", [])
    )  # fmt: skip
    assert "chosen (balanced):" in outputs and "hypervolume" in outputs
    assert "artefact: identical to the measured artefact" in outputs
    assert "generated" in outputs and "decode ms/token" in outputs
    assert list((tmp_path / "artefact").glob("*.gguf"))
