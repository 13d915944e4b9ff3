"""End to end in headless Chromium (Debian's ``chromium``, driven by Playwright): start
``agentic-compress ui``, launch a small search on a tiny random-weight model from the Runs page, watch
the live dashboard's Pareto plot gain points without reloading, download the explorer's SVG, and take a
screenshot of every page.

Screenshots go to ``$AGENTIC_COMPRESSION_SCREENSHOTS`` when set (``make screenshots`` sets it to
``docs/images``, which the README shows), else to the test's temporary folder, so that ``make test``
leaves the work tree clean; ``$AGENTIC_COMPRESSION_E2E_MODEL`` replaces the tiny model (``make
screenshots`` uses the embedded SmolLM2-135M, whose accuracies mean something). Without Chromium or Playwright the test is skipped, except under CI
(``CI=true``), where ``.ci/run`` installs both and a skip would hide a broken page.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import free_port
from crash_harness import save_tiny_llama

REPO = Path(__file__).resolve().parents[2]
RECORDED = REPO / "benchmarks" / "results" / "experiments_quick"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
TRIALS = 4  # enough for the dashboard to see the front grow on a fast machine


def _needs(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (.ci/run installs it)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if CHROMIUM is None:
        _needs("Debian's chromium is not installed: apt-get install chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _needs("Playwright is not installed: pip install playwright")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def tiny_model_folder(tmp_path_factory: pytest.TempPathFactory, embedded_tokenizer) -> Path:  # type: ignore[no-untyped-def]
    """A 2-layer random Llama over the real SmolLM2 vocabulary, saved as a folder the CLI loads."""
    return save_tiny_llama(tmp_path_factory.mktemp("tiny-llama"), embedded_tokenizer)


@pytest.fixture(scope="module")
def ui_home(
    tmp_path_factory: pytest.TempPathFactory, benchmarks_dir: Path
) -> Iterator[tuple[str, Path]]:
    """``agentic-compress ui`` on a free port over empty runs and a copy of a recorded experiment."""
    home = tmp_path_factory.mktemp("ui")
    shutil.copytree(RECORDED, home / "experiments" / "quick")
    port = free_port()
    env = {**os.environ, "AGENTIC_COMPRESSION_DATA": str(benchmarks_dir)}
    command = [sys.executable, "-m", "agentic_compression.cli.app", "ui", "--port", str(port),
               "--runs-dir", str(home / "runs"), "--experiments-dir", str(home / "experiments")]  # fmt: skip
    with (home / "ui.log").open("w") as log:
        server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=home)
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_healthy(url, server, home / "ui.log")
            yield url, home
        finally:
            server.terminate()
            server.wait(timeout=30)
            for job in (home / "runs" / ".ui-jobs").glob("*.log"):  # show the searches' output
                print(job.name, job.read_text(encoding="utf-8")[-2000:], sep="\n")


def _wait_healthy(url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"the UI exited with {server.returncode}: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"the UI did not answer within 90 s: {log.read_text()[-2000:]}")


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = os.environ.get("AGENTIC_COMPRESSION_SCREENSHOTS")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _open(page, url: str, title: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(url)
    page.get_by_role("heading", name=title).first.wait_for(timeout=60_000)
    _settle(page)


def _settle(page) -> None:  # type: ignore[no-untyped-def]
    """Wait until Streamlit has finished rerunning the script (its status widget is gone)."""
    page.wait_for_timeout(500)
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="detached", timeout=60_000)


def _shot(page, path: Path) -> None:  # type: ignore[no-untyped-def]
    """A screenshot of the whole page: Streamlit scrolls inside its main block, not the document,
    and draws what scrolls into view, so the viewport grows with the block until it stops growing."""
    height = 1000
    for _ in range(4):
        measured = page.evaluate(
            "() => { const b = document.querySelector('[data-testid=\"stMainBlockContainer\"]');"
            " return b ? b.scrollHeight : 0; }"
        )
        if int(measured) + 160 <= height:
            break
        height = int(measured) + 160
        page.set_viewport_size({"width": 1400, "height": height})
        _settle(page)
        page.wait_for_timeout(1000)  # charts draw after the script run ends
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size({"width": 1400, "height": 1000})


def _launch(page, url: str, model: str, planner: str) -> None:  # type: ignore[no-untyped-def]
    _open(page, url, "Runs")
    form = page.locator('[data-testid="stForm"]')
    form.get_by_label("Model (alias, folder, .gguf, hub id)").fill(model)
    form.get_by_label("Trial budget").fill(str(TRIALS))
    form.get_by_label("Examples per task").fill("5")
    form.get_by_label("Planner").click()
    page.get_by_role("option", name=planner, exact=True).click()
    form.get_by_label("Runtimes (empty: every one installed)").click()
    page.get_by_role("option", name="torch", exact=True).click()
    page.keyboard.press("Escape")
    form.get_by_text("Constraints and measurement settings").click()
    form.get_by_label("Perplexity windows").fill("2")
    form.get_by_label("Latency repeats").fill("1")
    form.get_by_label("Latency tokens").fill("4")
    form.get_by_role("button", name="Launch").click()
    page.get_by_text("started in the background").wait_for(timeout=30_000)


def _runs(home: Path) -> list[dict[str, object]]:
    from agentic_compression.ui.data import UiConfig, list_runs

    runs = home / "runs"
    return list_runs(UiConfig(runs, f"sqlite:///{runs / 'results.sqlite'}", home / "experiments"))


def _wait_runs(home: Path, count: int, status: str, timeout_s: float) -> None:
    """Wait until the store holds ``count`` runs, the newest of them in ``status``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        runs = _runs(home)
        if len(runs) >= count and runs[0]["status"] == status:
            return
        time.sleep(1)
    pytest.fail(f"no {count} runs with the newest {status} after {timeout_s:.0f} s: {_runs(home)}")


def _front_points(page) -> int:  # type: ignore[no-untyped-def]
    """Markers drawn in the dashboard's Plotly scatter (every measured trial is one); while the
    fragment redraws, the old plot may still be on the page beside the new one: count the fuller."""
    plots = page.locator(".js-plotly-plot")
    return max(
        (plots.nth(i).locator(".scatterlayer .point").count() for i in range(plots.count())),
        default=0,
    )


@pytest.mark.e2e
def test_launch_watch_download_and_screenshot_every_page(  # type: ignore[no-untyped-def]
    browser, ui_home: tuple[str, Path], tiny_model_folder: Path, shots: Path, tmp_path: Path
) -> None:
    ui_url, home = ui_home
    model = os.environ.get("AGENTIC_COMPRESSION_E2E_MODEL") or str(tiny_model_folder)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    # A bad form value is a one-line error, not a traceback; nothing is launched.
    _open(page, ui_url, "Runs")
    page.locator('[data-testid="stForm"]').get_by_label(
        "Model (alias, folder, .gguf, hub id)"
    ).fill(" ")
    page.get_by_role("button", name="Launch").click()
    page.get_by_text("model: give an alias").wait_for(timeout=30_000)
    assert page.locator('[data-testid="stException"]').count() == 0

    _launch(page, ui_url, model, "offline")
    _wait_runs(home, 1, "running", 120)
    _open(page, f"{ui_url}/dashboard", "Live dashboard")
    seen: list[int] = []
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:  # the fragment redraws every 3 s; the page is never reloaded
        seen.append(_front_points(page))
        if seen[-1] >= TRIALS:
            break
        page.wait_for_timeout(1000)
    print("plot points seen over time:", seen)
    assert seen and seen[-1] >= TRIALS, f"points seen over time: {seen}"
    drawn = [n for n in seen if n]
    assert drawn[0] < drawn[-1] == TRIALS, f"the plot did not gain points while open: {seen}"
    _wait_runs(home, 1, "finished", 300)
    page.get_by_text("finished:", exact=False).first.wait_for(timeout=30_000)
    _settle(page)
    _shot(page, shots / "ui-dashboard.png")

    # A second search (another planner) so that Compare has two runs side by side.
    _launch(page, ui_url, model, "random")
    _wait_runs(home, 2, "finished", 900)

    _open(page, f"{ui_url}/explorer", "Pareto explorer")
    svg_button = page.get_by_role("button", name="Download SVG")
    svg_button.wait_for(timeout=180_000)  # the figures are drawn once, then cached
    with page.expect_download(timeout=60_000) as download:
        svg_button.click()
    svg = tmp_path / download.value.suggested_filename
    download.value.save_as(svg)
    assert svg.suffix == ".svg"
    assert "<svg" in svg.read_text(encoding="utf-8")[:2000]
    _shot(page, shots / "ui-explorer.png")

    _open(page, f"{ui_url}/experiments", "Experiments")
    _shot(page, shots / "ui-experiments.png")
    _open(page, f"{ui_url}/compare", "Compare")
    _shot(page, shots / "ui-compare.png")
    _open(page, ui_url, "Runs")
    _shot(page, shots / "ui-runs.png")

    assert page.locator('[data-testid="stException"]').count() == 0
    assert not errors, errors
