"""`agentic-compress export`: a searched llama.cpp candidate written out, checked and servable."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

TINY_RUN = [
    "--max-trials", "1", "--tasks", "arc_easy", "--limit", "2", "--ppl-windows", "1",
    "--ppl-seq-len", "64", "--latency-prompt-tokens", "16", "--latency-new-tokens", "4",
    "--latency-repeats", "1", "--latency-warmup", "0", "--runtime", "llamacpp",
]  # fmt: skip


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agentic_compression.cli.app", *args],
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture()
def tiny_folder(tiny_llama, embedded_tokenizer, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    folder = tmp_path / "tiny-llama"
    tiny_llama.save_pretrained(folder)
    embedded_tokenizer.save_pretrained(folder)
    return folder


def test_export_writes_the_measured_artefact_with_its_serving_command(
    tiny_folder: Path, tmp_path: Path, benchmarks_dir: Path
) -> None:
    runs = tmp_path / "runs"
    done = _cli("run", "--model", str(tiny_folder), "--runs-dir", str(runs), "--run-id", "t1",
                "--data-dir", str(benchmarks_dir), "--fidelity", "halving", *TINY_RUN)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "trial 0 gguf-q8_0" in done.stdout  # the first seed of a llama.cpp-only space
    # --fidelity halving: screened, then (the last candidate) measured in full
    assert "trial 0 gguf-q8_0 (screening)" in done.stdout
    assert "trial 0 gguf-q8_0 (promoted, full fidelity)" in done.stdout

    output = tmp_path / "deploy"
    exported = _cli(
        "export", "t1", "--trial", "0", "--output", str(output), "--runs-dir", str(runs)
    )
    assert exported.returncode == 0, exported.stderr[-2000:]
    assert sorted(p.name for p in output.iterdir()) == [
        "SERVE.md", "measured.json", "model.gguf", "recipe.json",
    ]  # fmt: skip
    serve = (output / "SERVE.md").read_text()
    assert f"llama-server -m {output / 'model.gguf'} --ctx-size 2048" in serve
    assert "identical to the measured artefact" in serve  # compression and export are deterministic
    measured = json.loads((output / "measured.json").read_text())
    assert measured["result"]["metrics"]["deployment"]["format"] == "GGUF Q8_0"
    assert json.loads((output / "recipe.json").read_text())["runtime"]["quant"] == "Q8_0"


def test_export_refuses_what_it_cannot_write(tmp_path: Path) -> None:
    missing = _cli("export", "nope", "--trial", "0", "--output", str(tmp_path / "o"),
                   "--runs-dir", str(tmp_path))  # fmt: skip
    assert missing.returncode == 2
    assert "no run 'nope'" in missing.stderr and "Traceback" not in missing.stderr
