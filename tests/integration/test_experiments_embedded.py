"""One RQ for real on a tiny budget: run-rq4 (PyTorch) on a tiny random Llama over the real
tokenizer, with real compression and real measurements (on the embedded model the same command
takes about 3 minutes on 2 cores), then `report` reproduces its table byte for byte."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from typer.testing import CliRunner

from agentic_compression.cli import experiment_commands
from crash_harness import save_tiny_llama


def test_rq4_runs_for_real_and_reports_from_its_json(
    benchmarks_dir: Path,
    tmp_path: Path,
    embedded_tokenizer,  # type: ignore[no-untyped-def]
) -> None:
    app = typer.Typer()
    experiment_commands.register(app)
    model = save_tiny_llama(tmp_path / "tiny-llama", embedded_tokenizer)
    args = ["run-rq4", "--model", str(model), "--runtime", "torch", "--quick", "--seeds", "0", "--trials", "1",
            "--limit", "16", "--ppl-windows", "4", "--latency-new-tokens", "8",
            "--output", str(tmp_path / "out")]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "out" / "rq4.json").read_text())
    assert data["provenance"]["evaluation"]["model_hash"]
    assert data["provenance"]["evaluation"]["accuracy_tasks"]  # data fingerprints
    measured = [
        json.loads(line)
        for line in (tmp_path / "out" / "measurements.jsonl").read_text().splitlines()
    ]
    labels = {m["label"] for m in measured}
    # The baseline, the search's one trial (its first seed point) and the older rule's three picks.
    assert {"fp32", "wanda-70+nf4", "wanda-50+int8", "wanda-40+int8"} <= labels
    assert all(m["fidelity"] == "screen" for m in measured)
    ok = [m for m in measured if m["status"] == "ok"]
    assert ok and all(m["power_w"] > 0 and m["energy_kwh"] > 0 for m in ok)
    table = (tmp_path / "out" / "rq4.md").read_text()
    for profile in ("edge", "mobile", "cloud", "datacentre"):
        assert f"| {profile} |" in table
    (tmp_path / "out" / "rq4.md").unlink()
    assert CliRunner().invoke(app, ["report", str(tmp_path / "out")]).exit_code == 0
    assert (tmp_path / "out" / "rq4.md").read_text() == table
