"""The search commands: `runs` listing, `resume` of a finished run, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from agentic_compression.cli.search_commands import register
from agentic_compression.errors import UserInputError
from agentic_compression.results.store import SqliteResultsStore
from agentic_compression.workflow.runner import SearchSettings, create_run, run_search
from workflow_fakes import FakeEvaluator, FakeMetrics, ScriptedPlanner, recipe, table

RUNNER = CliRunner()


@pytest.fixture()
def app() -> typer.Typer:
    application = typer.Typer()
    register(application)
    return application


def _finished_run(runs_dir: Path) -> str:
    recipes = [recipe(s) for s in (0.1, 0.2)]
    rows = table(
        [(r, FakeMetrics(0.7 - 0.1 * i, 20.0 - i, 10**8, 1e-4)) for i, r in enumerate(recipes)]
    )
    settings = SearchSettings(max_trials=2, run_dir=str(runs_dir / "done"))
    with SqliteResultsStore(runs_dir / "results.sqlite") as store:
        run = create_run(store, "done", settings, "fakeconfig000000")
        run_search(
            run, ScriptedPlanner(recipes), FakeEvaluator(rows), store, runs_dir=runs_dir,
            plots=False,
        )  # fmt: skip
    return "done"


def test_runs_lists_state_trials_and_interrupted_runs(app: typer.Typer, tmp_path: Path) -> None:
    _finished_run(tmp_path)
    with SqliteResultsStore(tmp_path / "results.sqlite") as store:
        dead = create_run(store, "dead", SearchSettings(), "fakeconfig000000")
        store.mark_running(dead.run_id, 2**22 + 12345, dead.host or "")  # no such process
    result = RUNNER.invoke(app, ["runs", "--runs-dir", str(tmp_path)], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "Runs (2)" in result.output
    done_line = next(line for line in result.output.splitlines() if "done" in line)
    assert "finished" in done_line and "trial_budget" in done_line and " 2 " in done_line
    dead_line = next(line for line in result.output.splitlines() if "dead" in line)
    assert "interrupted" in dead_line


def test_resume_of_a_finished_run_rewrites_outputs_without_a_model(
    app: typer.Typer, tmp_path: Path
) -> None:
    run_id = _finished_run(tmp_path)
    (tmp_path / "done" / "results.json").unlink()
    result = RUNNER.invoke(app, ["resume", run_id, "--runs-dir", str(tmp_path)], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "has finished" in result.output and "chosen (balanced)" in result.output
    payload = json.loads((tmp_path / "done" / "results.json").read_text())
    assert payload["stop_reason"] == "trial_budget" and len(payload["trials"]) == 2
    assert payload["spent"]["trial_co2_kg"] == pytest.approx(2e-4)  # settings without fidelity
    assert {t["provenance"]["fidelity"] for t in payload["trials"]} == {"full"}
    assert (tmp_path / "done" / "pareto.svg").exists()


def test_a_search_stopped_before_any_full_measurement_says_so(
    app: typer.Typer, tmp_path: Path
) -> None:
    recipes = [recipe(s) for s in (0.1, 0.2, 0.3)]
    rows = table([(r, FakeMetrics(0.7, 20.0, 10**8, 1e-4)) for r in recipes])
    # each fake measurement costs 1e-4 kg: the carbon budget ends the search after one screening
    settings = SearchSettings(
        max_trials=3, fidelity="halving", carbon_budget_kg=1e-4, run_dir=str(tmp_path / "cut")
    )
    with SqliteResultsStore(tmp_path / "results.sqlite") as store:
        run = create_run(store, "cut", settings, "fakeconfig000000")
        run_search(
            run, ScriptedPlanner(recipes), FakeEvaluator(rows), store, runs_dir=tmp_path,
            plots=False,
        )  # fmt: skip
    result = RUNNER.invoke(app, ["resume", "cut", "--runs-dir", str(tmp_path)], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "no candidate was measured at full fidelity before the search stopped" in result.output


def test_resume_of_an_unknown_run_is_a_user_error(app: typer.Typer, tmp_path: Path) -> None:
    result = RUNNER.invoke(app, ["resume", "nope", "--runs-dir", str(tmp_path)])
    assert isinstance(result.exception, UserInputError)
    assert "no run 'nope'" in str(result.exception)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--planner", "magic"], "unknown planner 'magic'"),
        (["--select", "cheapest"], "--select"),
        (["--max-trials", "0"], "--max-trials"),
        (["--store-url", "mysql://x"], "unsupported storage URL"),
    ],
)
def test_bad_run_options_fail_before_loading_anything(
    app: typer.Typer, tmp_path: Path, args: list[str], fragment: str
) -> None:
    result = RUNNER.invoke(app, ["run", "--runs-dir", str(tmp_path), "--device", "cpu", *args])
    assert isinstance(result.exception, UserInputError), result.output
    assert fragment in str(result.exception)
    assert not (tmp_path / "results.sqlite").exists() or "--store-url" not in args


def test_user_error_is_one_line_and_exit_2(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from agentic_compression.cli import app as cli\n"
        "from agentic_compression.cli.search_commands import register\n"
        "if 'run' not in {c.name or c.callback.__name__ for c in cli.app.registered_commands}:\n"
        "    register(cli.app)\n"
        "cli.main()\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-c", script, "resume", "missing", "--runs-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert result.returncode == 2
    assert "no run 'missing'" in result.stderr and "Traceback" not in result.stderr
