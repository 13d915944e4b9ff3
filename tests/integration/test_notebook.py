"""The notebook (notebooks/compression_cycle.ipynb) runs top to bottom: search, front, export,
serving the chosen GGUF with llama.cpp. Users run it on the embedded model (about 3 minutes on 2
cores); the test gives it a tiny random Llama over the real tokenizer (``NOTEBOOK_MODEL``), so the
same cells run in seconds of model work."""

from __future__ import annotations

from pathlib import Path

import pytest

from crash_harness import save_tiny_llama

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "compression_cycle.ipynb"


def test_notebook_runs_the_whole_cycle(
    benchmarks_dir: Path,
    tmp_path: Path,
    embedded_tokenizer,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import nbformat
    from nbclient import NotebookClient

    from agentic_compression.runtimes import installed_runtimes

    if "llamacpp" not in installed_runtimes():
        pytest.skip("the notebook serves a GGUF: llama.cpp is not installed")
    monkeypatch.setenv("NOTEBOOK_WORKDIR", str(tmp_path))
    tiny = save_tiny_llama(tmp_path / "tiny-llama", embedded_tokenizer)
    monkeypatch.setenv("NOTEBOOK_MODEL", str(tiny))
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
