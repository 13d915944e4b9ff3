"""``agentic-compress``: evaluate recipes, list methods and presets (search commands join later).

User mistakes (:class:`UserInputError`) print one line on stderr and exit with status 2, no traceback.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from agentic_compression.cli.options import (
    CountryOption,
    DataDirOption,
    MeterOption,
    ZoneOption,
    plain,
)
from agentic_compression.errors import UserInputError
from agentic_compression.redaction import scrub

app = typer.Typer(
    name="agentic-compress",
    help="Search, apply and measure compression recipes for causal language models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)

DEFAULT_MODEL = "smollm2-135m"


def _quiet_libraries() -> None:
    """Silence import-time chatter of torchao, codecarbon and transformers' progress bars (a run
    sends them to its log file instead: :mod:`.terminal`)."""
    import logging
    import os
    import warnings

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TQDM_DISABLE", "1")  # lm-eval's bars would tear the rich progress line
    warnings.filterwarnings("ignore")
    from agentic_compression.cli.terminal import THIRD_PARTY_LOGGERS

    for name in THIRD_PARTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    logging.getLogger().setLevel(logging.ERROR)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    # torch re-initialises its own loggers (to WARNING) when torch._dynamo is first imported
    # (torchao does, at import): set the level in torch's own log state so it sticks.
    import torch._logging

    torch._logging.set_logs(all=logging.ERROR)


@app.command()
def evaluate(
    recipe: Annotated[
        list[str],
        typer.Option("--recipe", "-r", help="Preset name, JSON file or inline JSON; repeatable."),
    ],
    model: Annotated[
        str, typer.Option(help="Alias, folder, .gguf file or hub id.")
    ] = DEFAULT_MODEL,
    baseline: Annotated[
        bool, typer.Option(help="Also measure the uncompressed fp32 model and show ratios to it.")
    ] = False,
    tasks: Annotated[
        str | None, typer.Option(help="lm-eval tasks, comma separated (e.g. arc_easy,hellaswag).")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Examples per task.")] = None,
    allow_code_execution: Annotated[
        bool, typer.Option(help="Let HumanEval run generated code (sandboxed process, opt-in).")
    ] = False,
    data_dir: DataDirOption = None,
    country: CountryOption = "USA",
    zone: ZoneOption = None,
    meter: MeterOption = "auto",
    device: Annotated[str, typer.Option(help="cpu, cuda or auto.")] = "auto",
    calibration_file: Annotated[
        Path | None, typer.Option(help="Calibration text (.txt or .jsonl with 'text').")
    ] = None,
    ppl_windows: Annotated[int, typer.Option(help="512-token windows of WikiText-2.")] = 16,
    latency_repeats: Annotated[int, typer.Option(help="Timed generation repeats.")] = 3,
    seed: int = 0,
    output: Annotated[Path | None, typer.Option(help="Where to write the JSON results.")] = None,
) -> None:
    """Compress the model with each recipe and measure it for real."""
    from agentic_compression.cli.evaluate_command import EvaluateRequest, run_evaluate

    request = EvaluateRequest(
        model=model,
        recipes=tuple(recipe),
        baseline=baseline,
        tasks=tasks,
        limit=limit,
        allow_code_execution=allow_code_execution,
        data_dir=data_dir,
        country=country,
        zone=zone,
        meter=meter,
        device=device,
        calibration_file=calibration_file,
        ppl_windows=ppl_windows,
        latency_repeats=latency_repeats,
        seed=seed,
        output=output or _default_output("evaluate"),
    )
    ok = run_evaluate(request, console)
    if not ok:
        raise typer.Exit(1)


def _default_output(kind: str) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{kind}-{stamp}.json"


@app.command()
def methods(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON schemas.")] = False,
) -> None:
    """List compression methods with their parameters, and the named presets."""
    from rich.table import Table

    from agentic_compression.compression.presets import PRESETS, RUNTIME_PRESETS
    from agentic_compression.compression.registry import registered_methods
    from agentic_compression.core.runtime_config import RUNTIME_CONFIGS
    from agentic_compression.runtimes import installed_runtimes

    specs = registered_methods()
    installed = installed_runtimes()
    if as_json:
        schemas = {
            name: {
                **spec.config_cls.model_json_schema(),
                "runtimes": list(spec.config_cls.runtimes),
                "search_choices": [c.name for c in spec.config_cls.search_choices if c.searched],
            }
            for name, spec in specs.items()
        }
        runtime_schemas = {
            name: {"installed": name in installed, "schema": cls.model_json_schema()}
            for name, cls in RUNTIME_CONFIGS.items()
        }
        console.print_json(
            json.dumps(
                {
                    "methods": schemas,
                    "runtimes": runtime_schemas,
                    "presets": PRESETS,
                    "runtime_presets": RUNTIME_PRESETS,
                }
            )
        )
        return
    table = Table(title="Compression methods")
    for column in ("method", "family", "what it does", "parameters (default)", "served by"):
        table.add_column(column)
    for name, spec in specs.items():
        config_cls = spec.config_cls
        params = [f"{field}={_default(info)}" for field, info in config_cls.model_fields.items()]
        served = ", ".join(config_cls.runtimes)
        table.add_row(name, config_cls.family, config_cls.summary, ", ".join(params), served)
    console.print(table)
    presets = Table(title="Presets (--recipe NAME)")
    presets.add_column("preset")
    presets.add_column("steps")
    for name, steps in PRESETS.items():
        presets.add_row(name, json.dumps(steps))
    for name, runtime in RUNTIME_PRESETS.items():
        presets.add_row(name, f"[] served by {json.dumps(runtime)}")
    console.print(presets)
    runtimes = Table(title='Runtimes (recipe "runtime": {"name": ..., settings})')
    for column in ("runtime", "installed", "settings (default)"):
        runtimes.add_column(column)
    for name, cls in RUNTIME_CONFIGS.items():
        settings = [
            f"{field}={_default(info)}"
            for field, info in cls.model_fields.items()
            if field != "name"
        ]
        runtimes.add_row(name, "yes" if name in installed else "no", ", ".join(settings) or "-")
    console.print(runtimes)


def _default(info: Any) -> str:
    """A pydantic field's default as shown to users (a factory's value, not 'PydanticUndefined')."""
    if info.default_factory is not None:
        return repr(info.default_factory())
    return repr(info.default)


def _register_subcommands() -> None:
    from agentic_compression.cli import (
        accuracy_commands,
        carbon_commands,
        experiment_commands,
        export_command,
        gallery_commands,
        search_commands,
        ui_command,
    )

    accuracy_commands.register(app)
    search_commands.register(app)
    export_command.register(app)
    carbon_commands.register(app)
    experiment_commands.register(app)
    gallery_commands.register(app)
    ui_command.register(app)


_register_subcommands()


def main() -> None:
    """Console-script entry point: one-line errors for user mistakes, exit status 2."""
    _quiet_libraries()
    from agentic_compression.cli.terminal import show_product_warnings

    show_product_warnings(console)
    try:
        app()
    except UserInputError as error:
        err_console.print(
            f"[bold red]error:[/] {plain(scrub(str(error)))}", highlight=False, soft_wrap=True
        )
        sys.exit(2)


if __name__ == "__main__":
    main()
