"""The results gallery: add a finished run, compare a later run against it, refusals."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from agentic_compression.cli.gallery_commands import register
from agentic_compression.results import gallery
from agentic_compression.results.store import SqliteResultsStore
from agentic_compression.workflow.runner import SearchSettings, create_run, run_search
from workflow_fakes import FakeEvaluator, FakeMetrics, ScriptedPlanner, recipe, table

RUNNER = CliRunner()


def _run(runs_dir: Path, run_id: str, slowdown: float, accuracy_shift: float) -> Path:
    recipes = [recipe(s) for s in (0.1, 0.2, 0.3)]
    metrics = [
        FakeMetrics(0.7 - 0.1 * i + accuracy_shift, (20.0 - i) * slowdown, 10**8 // (i + 1), 1e-4)
        for i in range(len(recipes))
    ]
    rows = table(list(zip(recipes, metrics, strict=True)))
    settings = SearchSettings(max_trials=3, run_dir=str(runs_dir / run_id))
    with SqliteResultsStore(runs_dir / "results.sqlite") as store:
        run = create_run(store, run_id, settings, "fakeconfig000000")
        run_search(
            run, ScriptedPlanner(recipes), FakeEvaluator(rows), store, runs_dir=runs_dir,
            plots=False,
        )  # fmt: skip
    return runs_dir / run_id


@pytest.fixture()
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> typer.Typer:
    monkeypatch.setenv(gallery.GALLERY_ENV, str(tmp_path / "gallery"))
    application = typer.Typer()
    register(application)
    return application


def test_add_then_compare_shows_the_differences(app: typer.Typer, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    _run(runs, "before", slowdown=1.0, accuracy_shift=0.0)
    _run(runs, "after", slowdown=1.5, accuracy_shift=-0.02)
    added = RUNNER.invoke(
        app, ["gallery", "add", "before", "--runs-dir", str(runs), "--name", "ref"]
    )
    assert added.exit_code == 0, added.output
    assert (tmp_path / "gallery" / "ref" / "results.json").is_file()
    listed = RUNNER.invoke(app, ["gallery", "list"], terminal_width=200)
    assert "ref" in listed.output and "smollm2-135m" in listed.output
    (c,) = gallery.compare(gallery.load_run(runs / "after"))
    assert c.same_settings and [d.label for d in c.shared] == ["mag-10", "mag-20", "mag-30"]
    assert all(d.accuracy_delta == pytest.approx(-0.02) for d in c.shared)
    assert all(d.latency_ratio == pytest.approx(1.5) and d.size_ratio == 1.0 for d in c.shared)
    shown = RUNNER.invoke(app, ["gallery", "compare", str(runs / "after")], terminal_width=200)
    assert shown.exit_code == 0, shown.output
    assert "vs ref" in shown.output and "-0.0200" in shown.output and "1.500" in shown.output


def test_refusals(app: typer.Typer, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    _run(runs, "before", slowdown=1.0, accuracy_shift=0.0)
    for args, message in (
        (["gallery", "add", "before", "--runs-dir", str(runs), "--name", "../x"], "gallery name"),
        (["gallery", "add", "nothere", "--runs-dir", str(runs)], "no run folder"),
        (["gallery", "compare", str(runs / "before")], "has no entry for model"),
    ):
        result = RUNNER.invoke(app, args)
        assert result.exit_code != 0 and message in str(result.exception), result.output
    assert RUNNER.invoke(app, ["gallery", "add", "before", "--runs-dir", str(runs)]).exit_code == 0
    again = RUNNER.invoke(app, ["gallery", "add", "before", "--runs-dir", str(runs)])
    assert "already has 'before'" in str(again.exception)
