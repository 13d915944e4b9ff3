"""``agentic-compress export RUN_ID --trial N --output DIR``: the deployable artefact of a trial.

The trial's recipe is applied again to the run's base model (compression is deterministic: same
seed, same calibration text) and exported to the trial's runtime; the artefact's SHA-256 is checked
against the one measured during the search and the check is written down either way. Beside the
artefact: ``recipe.json``, ``measured.json`` (the trial record: every figure with its provenance)
and ``SERVE.md`` with the exact command that serves it (for llama.cpp, a ``llama-server`` line).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from agentic_compression.errors import UserInputError

console = Console()


def export(
    run_id: Annotated[str, typer.Argument(help="The run (see `agentic-compress runs`).")],
    trial: Annotated[int, typer.Option(help="Trial number (see the run's trials.csv).")],
    output: Annotated[Path, typer.Option(help="Folder to write the artefact into.")],
    runs_dir: Annotated[Path, typer.Option(help="Folder of run outputs.")] = Path("runs"),
    store_url: Annotated[str | None, typer.Option(help="Results store URL.")] = None,
) -> None:
    """Write a trial's deployable artefact with its recipe, measurements and serving command."""
    from agentic_compression.cli.search_commands import default_store_url
    from agentic_compression.compression import CompressionContext, compress
    from agentic_compression.models import load_model
    from agentic_compression.results.store import make_results_store
    from agentic_compression.runtimes import runtime_for
    from agentic_compression.workflow.runner import check_run_id, find_run, settings_of

    check_run_id(run_id)
    with make_results_store(store_url or default_store_url(runs_dir)) as store:
        record = find_run(store, run_id)
        found = store.get_trial(run_id, trial)
    if found is None:
        raise UserInputError(f"run {run_id} has no trial {trial}; see its trials.csv")
    if found.status != "ok" or found.result.metrics is None:
        raise UserInputError(f"trial {trial} failed ({found.error}); export an ok trial")
    if output.exists() and any(output.iterdir()):
        raise UserInputError(f"output folder {str(output)!r} is not empty; choose a new folder")
    settings = settings_of(record)
    recipe = found.recipe
    measured = found.result.metrics.deployment
    console.print(f"loading {settings.model}", highlight=False, markup=False)
    base = load_model(settings.model, device=settings.device)
    context = CompressionContext(
        base.tokenizer, settings.measure_config().calibration, settings.seed, teacher=base.model
    )
    model = base.fresh_copy()
    console.print(f"compressing: {recipe.label}", highlight=False, markup=False)
    compress(model, recipe, context)
    runtime = runtime_for(recipe.runtime)
    workdir = Path(tempfile.mkdtemp(prefix="agentic-export-"))
    try:
        with runtime.deploy(model, base, recipe.runtime, context, workdir) as deployment:
            files = runtime.write_artefact(deployment, output)
            sha = deployment.info.sha256
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    expected = measured.artefact_sha256 if measured else None
    if expected is None or sha is None:
        check = "no artefact hash was recorded for this runtime (the model is served in memory)"
    elif sha == expected:
        check = f"identical to the measured artefact (sha256 {sha})"
    else:
        check = (
            f"DIFFERS from the measured artefact (sha256 {sha}, measured {expected}): "
            "the figures in measured.json may not hold for it"
        )
    command = runtime.serve_command(files, recipe.runtime)
    (output / "recipe.json").write_text(json.dumps(recipe.to_dict(), indent=2))
    (output / "measured.json").write_text(found.model_dump_json(indent=2))
    (output / "SERVE.md").write_text(
        f"# {recipe.label} (run {run_id}, trial {trial})\n\n"
        f"Serve it with:\n\n```bash\n{command}\n```\n\n"
        f"Artefact check: {check}.\n\n"
        "Every figure measured during the search, with its provenance, is in measured.json.\n"
    )
    for path in files:
        console.print(f"wrote {path}", highlight=False, markup=False)
    console.print(f"artefact: {check}", highlight=False, markup=False)
    console.print(f"serve: {command}", highlight=False, markup=False)


def register(app: typer.Typer) -> None:
    app.command("export")(export)
