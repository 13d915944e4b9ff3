"""The web UI's pages under Streamlit's AppTest, over a results store with real (fake-measured) runs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest
from test_gallery import _run

from agentic_compression.errors import UserInputError
from agentic_compression.ui import jobs
from agentic_compression.ui.figures import figure_bytes
from agentic_compression.ui.forms import search_args

PAGES = Path(__file__).resolve().parents[2] / "src" / "agentic_compression" / "ui" / "pages"
RECORDED = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "experiments_quick"


@pytest.fixture()
def runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    runs_dir = tmp_path / "runs"
    _run(runs_dir, "first", slowdown=1.0, accuracy_shift=0.0)
    _run(runs_dir, "second", slowdown=1.5, accuracy_shift=-0.02)
    experiments = tmp_path / "experiments"
    shutil.copytree(RECORDED, experiments / "quick")
    monkeypatch.setenv("AGENTIC_COMPRESSION_UI_RUNS", str(runs_dir))
    monkeypatch.setenv("AGENTIC_COMPRESSION_UI_EXPERIMENTS", str(experiments))
    monkeypatch.delenv("AGENTIC_COMPRESSION_UI_STORE", raising=False)
    return runs_dir


def page(name: str) -> AppTest:
    app = AppTest.from_file(str(PAGES / f"{name}.py"), default_timeout=60)
    app.run()
    assert not app.exception, app.exception
    return app


def test_runs_page_lists_runs_and_launches_a_checked_search(
    runs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    launched: list[list[str]] = []

    def fake_launch(args: list[str], folder: Path, env: object = None) -> jobs.Job:
        launched.append(args)
        return jobs.Job("j1", 12345, [*jobs.cli_command(), *args], str(folder / "j1.log"), "now")

    monkeypatch.setattr(jobs, "launch", fake_launch)
    app = page("runs")
    table = app.dataframe[0].value
    assert set(table["run_id"]) == {"first", "second"} and set(table["status"]) == {"finished"}
    app.text_input[0].set_value("  ")  # the model
    next(b for b in app.button if b.label == "Launch").click().run()
    assert "model: give an alias" in app.error[0].value and not launched
    app.text_input[0].set_value("smollm2-135m")
    app.multiselect[0].set_value(["torch", "llamacpp"])
    next(b for b in app.button if b.label == "Launch").click().run()
    (args,) = launched
    assert args[:3] == ["run", "--model", "smollm2-135m"]
    assert "--runtime" in args and args[args.index("--runtime") + 1] == "torch,llamacpp"
    assert "--store-url" in args and "started in the background" in app.success[0].value


def test_search_args_refuses_a_bad_threshold() -> None:
    with pytest.raises(UserInputError, match="accuracy threshold"):
        search_args({"model": "m", "accuracy_threshold": 1.5})
    assert search_args({"model": "m", "max_trials": 3, "limit": None}) == [
        "run", "--model", "m", "--max-trials", "3"]  # fmt: skip


def test_dashboard_shows_trials_carbon_and_the_front(runs: Path) -> None:
    app = page("dashboard")
    metrics = {m.label: m.value for m in app.metric}
    assert (metrics["Trials"] == "3 / 3" and metrics["GPU"] in ("no GPU",)) or "%" in metrics["GPU"]
    assert any("carbon" in str(p.proto) for p in app.get("progress"))
    assert any("on the front" in c.value for c in app.caption)


def test_explorer_plots_downloads_and_provenance(runs: Path) -> None:
    app = page("explorer")
    assert len(app.get("plotly_chart")) == 2  # the front and the parallel coordinates
    labels = [b.proto.label for b in app.get("download_button")]
    assert labels == ["Download SVG", "Download PDF", "Download PNG"]
    app.selectbox(key="explorer_point").select_index(1).run()
    assert any("Trial 1" in h.value for h in app.subheader)
    assert app.get("json")


def test_figure_exports_are_real_files(runs: Path) -> None:
    from agentic_compression.ui.common import config
    from agentic_compression.ui.data import run_trials

    _, rows = run_trials(config(), "first")
    assert figure_bytes(rows, "latency_ms", "accuracy", "svg").startswith(b"<?xml")
    assert figure_bytes(rows, "latency_ms", "accuracy", "pdf").startswith(b"%PDF")
    assert figure_bytes(rows, "latency_ms", "accuracy", "png").startswith(b"\x89PNG")


def test_experiments_page_shows_recorded_tables(runs: Path) -> None:
    app = page("experiments")
    text = "\n".join(m.value for m in app.markdown)
    assert "RQ1: dynamic (agentic) vs static compression" in text
    assert "RQ4: deployment profiles" in text
    assert app.get("imgs") or app.get("image")


def test_compare_page_puts_runs_side_by_side(runs: Path) -> None:
    app = page("compare")
    side = app.dataframe[0].value
    assert set(side["run"]) == {"first", "second"}
    shared = app.dataframe[1].value
    assert len(shared) == 3 and "first accuracy" in shared.columns


def test_the_app_navigates_to_every_page(runs: Path) -> None:
    app = AppTest.from_file(str(PAGES.parent / "app.py"), default_timeout=60)
    app.run()
    assert not app.exception, app.exception
    assert app.title[0].value == "Runs"
