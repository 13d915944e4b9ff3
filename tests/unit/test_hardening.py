"""Hardening (issue #10): untrusted checkpoints and run ids, and what the results database may not
decide. Each test fails without its fix."""

from __future__ import annotations

import io
import json
import os
import socket
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from agentic_compression.cli.search_commands import register
from agentic_compression.errors import UserInputError
from agentic_compression.results.store import SqliteResultsStore
from agentic_compression.workflow.checkpointer import strict_serializer
from agentic_compression.workflow.runner import (
    SearchSettings,
    check_run_id,
    create_run,
    export_run,
    run_search,
)
from workflow_fakes import FakeEvaluator, FakeMetrics, ScriptedPlanner, recipe, table

RUNNER = CliRunner()
CALLED: list[str] = []


@dataclass
class Payload:
    """Stands for any type a crafted checkpoint names: building it runs code."""

    command: str

    def __post_init__(self) -> None:
        CALLED.append(self.command)


def test_checkpoints_never_rebuild_the_types_they_name() -> None:
    from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

    crafted = JsonPlusSerializer(allowed_msgpack_modules=True).dumps_typed(
        {"trials": [Payload("rm -rf ~")]}
    )
    CALLED.clear()
    JsonPlusSerializer(allowed_msgpack_modules=True).loads_typed(crafted)
    assert CALLED == ["rm -rf ~"]  # LangGraph's lenient decoder runs it
    CALLED.clear()
    decoded = strict_serializer().loads_typed(crafted)
    assert CALLED == [] and not isinstance(decoded["trials"][0], Payload)


@pytest.mark.parametrize("bad", ["../x", "a/b", "..", ".", "", "run id", "x;rm", "/abs"])
def test_run_ids_are_folder_names_only(bad: str) -> None:
    with pytest.raises(UserInputError, match="bad run id"):
        check_run_id(bad)
    assert check_run_id("20250101-120000-1a2b3c") == "20250101-120000-1a2b3c"


def test_run_refuses_a_path_as_run_id_before_loading_anything(tmp_path: Path) -> None:
    app = typer.Typer()
    register(app)
    result = RUNNER.invoke(
        app, ["run", "--runs-dir", str(tmp_path), "--device", "cpu", "--run-id", "../../escape"]
    )
    assert isinstance(result.exception, UserInputError) and "bad run id" in str(result.exception)
    assert not (tmp_path / "results.sqlite").exists()


def _finished(runs_dir: Path, **stored: str) -> str:
    recipes = [recipe(s) for s in (0.1, 0.2)]
    rows = table(
        [(r, FakeMetrics(0.7 - 0.1 * i, 20.0 - i, 10**8, 1e-4)) for i, r in enumerate(recipes)]
    )
    with SqliteResultsStore(runs_dir / "results.sqlite") as store:
        run = create_run(store, "done", SearchSettings(max_trials=2), "fakeconfig000000")
        run_search(
            run, ScriptedPlanner(recipes), FakeEvaluator(rows), store, runs_dir=runs_dir,
            plots=False,
        )  # fmt: skip
    if stored:  # what a crafted database would say
        with sqlite3.connect(runs_dir / "results.sqlite") as conn:
            config = json.loads(conn.execute("SELECT config FROM ac_runs").fetchone()[0])
            conn.execute("UPDATE ac_runs SET config = ?", (json.dumps({**config, **stored}),))
    return "done"


def test_outputs_go_to_the_runs_dir_never_to_a_stored_folder(tmp_path: Path) -> None:
    elsewhere = tmp_path / "chosen-by-the-database"
    _finished(tmp_path, run_dir=str(elsewhere))
    (tmp_path / "done" / "results.json").unlink()
    with SqliteResultsStore(tmp_path / "results.sqlite") as store:
        export_run("done", store, runs_dir=tmp_path, plots=False)
    assert (tmp_path / "done" / "results.json").exists() and not elsewhere.exists()


def test_a_stored_checkpoint_path_elsewhere_is_not_followed(tmp_path: Path) -> None:
    _finished(tmp_path, checkpoint_url=f"sqlite:///{tmp_path / 'other' / 'c.sqlite'}")
    with (
        SqliteResultsStore(tmp_path / "results.sqlite") as store,
        pytest.raises(UserInputError, match="pass --checkpoint-url"),
    ):
        export_run("done", store, runs_dir=tmp_path, plots=False)
    assert not (tmp_path / "other").exists()


def test_resume_refuses_a_run_whose_process_is_alive(tmp_path: Path) -> None:
    app = typer.Typer()
    register(app)
    with SqliteResultsStore(tmp_path / "results.sqlite") as store:
        create_run(store, "live", SearchSettings(), "fakeconfig000000")  # this process, alive
        store.mark_running("live", os.getpid(), "another-host")
    result = RUNNER.invoke(app, ["resume", "live", "--runs-dir", str(tmp_path)])
    assert isinstance(result.exception, UserInputError)
    assert "marked running on another-host" in str(result.exception) and "--force" in str(
        result.exception
    )
    with SqliteResultsStore(tmp_path / "results.sqlite") as store:
        store.mark_running("live", os.getpid(), socket.gethostname())
    result = RUNNER.invoke(app, ["resume", "live", "--runs-dir", str(tmp_path)])
    assert "is still running" in str(result.exception)


def test_user_text_is_printed_verbatim_never_as_markup() -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "agentic_compression.cli.app", "evaluate", "--recipe",
         '{"steps": [], "runtime": {"name": "[/x]"}}'],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "unknown runtime '[/x]'" in done.stderr
    from rich.console import Console

    from agentic_compression.cli.options import plain

    out = Console(file=io.StringIO(), width=200)
    hint = "pip install 'agentic-compression[postgres]'"
    out.print(f"[bold red]error:[/] {plain(hint)}")
    assert "agentic-compression[postgres]" in out.file.getvalue()  # type: ignore[attr-defined]


def _tiny_base(tiny_llama, embedded_tokenizer):  # type: ignore[no-untyped-def]
    from agentic_compression.models.loading import LoadedModel

    return LoadedModel("tiny", "test", tiny_llama, embedded_tokenizer, "tinyhash")


def test_an_unexpected_exception_in_a_phase_is_a_failed_trial(  # type: ignore[no-untyped-def]
    tiny_llama, embedded_tokenizer, monkeypatch
) -> None:
    from agentic_compression.carbon.energy_meter import CodeCarbonMeter
    from agentic_compression.compression.presets import preset
    from agentic_compression.evaluation import candidate
    from agentic_compression.evaluation.latency import LatencyConfig

    def broken(*_: object) -> None:
        return 1 // 0  # type: ignore[return-value]

    monkeypatch.setattr(candidate, "timed_latency", broken)
    config = candidate.MeasureConfig(
        latency=LatencyConfig(new_tokens=2, repeats=1), perplexity=None
    )
    result = candidate.evaluate_candidate(
        _tiny_base(tiny_llama, embedded_tokenizer), preset("fp32"), config, CodeCarbonMeter("USA")
    )
    assert result.status == "failed" and result.failed_phase == "latency"
    assert (result.error or "").startswith("ZeroDivisionError")
    assert "latency" in {r.phase for r in result.energy}  # what it cost is still counted


def test_energy_per_token_meters_only_the_timed_generations(  # type: ignore[no-untyped-def]
    tiny_llama, embedded_tokenizer
) -> None:
    from agentic_compression.carbon.energy_meter import CodeCarbonMeter
    from agentic_compression.compression.presets import preset
    from agentic_compression.evaluation.candidate import MeasureConfig, evaluate_candidate
    from agentic_compression.evaluation.latency import LatencyConfig

    latency = LatencyConfig(prompt_tokens=16, new_tokens=4, warmup=2, repeats=3)
    result = evaluate_candidate(
        _tiny_base(tiny_llama, embedded_tokenizer), preset("fp32"),
        MeasureConfig(latency=latency, perplexity=None), CodeCarbonMeter("USA"),
    )  # fmt: skip
    assert result.status == "ok" and result.metrics is not None
    per_token = result.metrics.inference_energy
    assert result.metrics.latency is not None
    # 3 repeats of 5 tokens, per attempt (a loaded machine makes the noise guard measure again)
    tokens = 3 * 5 * (result.metrics.latency.remeasured + 1)
    assert per_token is not None and per_token.generated_tokens == tokens
    phases = {r.phase: r for r in result.energy}
    assert "latency-warmup" in phases  # the warm-up is metered apart, not divided into tokens
    assert per_token.energy_kwh_per_token * tokens == pytest.approx(phases["latency"].energy_kwh)
    assert "warm-up excluded" in per_token.meter


@pytest.mark.parametrize("threshold", ["2", "-1"])
def test_an_accuracy_threshold_outside_0_1_is_refused_up_front(
    threshold: str, tmp_path: Path
) -> None:
    app = typer.Typer()
    register(app)
    result = RUNNER.invoke(
        app, ["run", "--runs-dir", str(tmp_path), "--accuracy-threshold", threshold]
    )
    assert isinstance(result.exception, UserInputError)
    assert "--accuracy-threshold" in str(result.exception)
    assert not (tmp_path / "results.sqlite").exists()


def test_an_output_replaced_atomically_survives_a_failed_write(tmp_path: Path) -> None:
    from agentic_compression.paths import atomic_output

    target = tmp_path / "trials.csv"
    target.write_text("complete old content")
    with pytest.raises(RuntimeError), atomic_output(target) as staging:
        staging.write_text("half of the new")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "complete old content"
    assert [p.name for p in tmp_path.iterdir()] == ["trials.csv"]


def test_one_scrubber_masks_every_kind_of_secret() -> None:
    from agentic_compression.redaction import redact_url, scrub

    assert redact_url("postgresql://me@db/x?password=hunter2&sslmode=require") == (
        "postgresql://me@db/x?password=***&sslmode=require"
    )
    text = scrub(
        "HTTP 401 from https://u:pw1234@llm.local/v1?api_key=abc: token=t0ps3cret, "
        "Authorization: Bearer abcdefghijkl, key sk-live-123456 rejected",
        environ={"OPENAI_API_KEY": "sk-live-123456", "HOME": "/root"},
    )
    for secret in ("pw1234", "api_key=abc", "t0ps3cret", "abcdefghijkl", "sk-live-123456"):
        assert secret not in text
    assert "llm.local" in text and "HTTP 401" in text


def test_a_bad_percent_escape_in_a_postgres_url_never_shows_the_password() -> None:
    from agentic_compression.results.store import make_results_store

    with pytest.raises(UserInputError) as caught:
        make_results_store("postgresql://me:se%zzcret@127.0.0.1:5432/test")
    message = str(caught.value)
    assert "se%zzcret" not in message and "zzcret" not in message
    assert "%25" in message  # the fix, named


def test_the_llm_planner_name_never_holds_the_base_url_credentials() -> None:
    from agentic_compression.planning.llm import LLMPlanner
    from agentic_compression.planning.random_planner import RandomPlanner

    label = "openai-compatible m at http://bob:hunter22@llm.local:8080/v1?api_key=abc123"
    planner = LLMPlanner(object(), fallback=RandomPlanner(seed=0), model_label=label)
    assert "hunter22" not in planner.name and "abc123" not in planner.name
    assert "llm.local:8080" in planner.name


def test_carbon_tokens_are_stripped() -> None:
    from agentic_compression.carbon.electricitymaps import ElectricityMapsProvider

    provider = ElectricityMapsProvider(token="  tok-123 \n")
    assert provider._token == "tok-123"


def test_the_resume_guard_hashes_the_data_as_resolved(  # type: ignore[no-untyped-def]
    tmp_path: Path, monkeypatch
) -> None:
    from agentic_compression.evaluation.accuracy import AccuracyConfig, TaskSpec
    from agentic_compression.evaluation.candidate import MeasureConfig
    from agentic_compression.workflow.evaluator import evaluation_config_hash

    shared = Path(__file__).resolve().parents[3] / "shared" / "benchmarks" / "arc"
    if not shared.is_dir():
        pytest.skip("needs ../shared/benchmarks")
    one, two = tmp_path / "one" / "arc", tmp_path / "two" / "arc"
    for folder in (one, two):
        folder.mkdir(parents=True)
        for split in ("train", "validation", "test"):
            name = f"ARC-Easy-{split}.jsonl"
            (folder / name).write_bytes((shared / name).read_bytes())
    (two / "ARC-Easy-test.jsonl").write_bytes((shared / "ARC-Easy-test.jsonl").read_bytes()[:-200])

    def config_hash(data_dir: Path | None) -> str:
        accuracy = AccuracyConfig(tasks=(TaskSpec("arc_easy"),), data_dir=data_dir, limit=5)
        return evaluation_config_hash("m", MeasureConfig(accuracy=accuracy), "USA")

    explicit = config_hash(one.parent)
    monkeypatch.setenv("AGENTIC_COMPRESSION_DATA", str(one.parent))
    assert config_hash(None) == explicit  # the same data, named another way
    monkeypatch.setenv("AGENTIC_COMPRESSION_DATA", str(two.parent))
    assert config_hash(None) != explicit  # other data behind the same (empty) option


@pytest.mark.parametrize("where", ["/proc/x/out.json", "read-only"])
def test_an_unwritable_evaluate_output_is_refused_before_any_work(
    where: str, tmp_path: Path
) -> None:
    import subprocess
    import sys

    if where == "read-only":
        folder = tmp_path / "ro"
        folder.mkdir()
        folder.chmod(0o500)
        where = str(folder / "out.json")
        if os.access(folder, os.W_OK):
            pytest.skip("running as root: a read-only folder is writable")
    done = subprocess.run(
        [sys.executable, "-m", "agentic_compression.cli.app", "evaluate", "--recipe", "fp32",
         "--output", where],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert "--output" in done.stderr and "cannot be written" in done.stderr
    assert "loading" not in done.stdout


def test_an_unwritable_runs_dir_is_refused_before_any_work() -> None:
    app = typer.Typer()
    register(app)
    result = RUNNER.invoke(app, ["run", "--runs-dir", "/proc/x", "--device", "cpu"])
    assert isinstance(result.exception, UserInputError)
    assert "--runs-dir '/proc/x' cannot be written" in str(result.exception)


def test_a_binary_recipe_file_is_one_line(tmp_path: Path) -> None:
    from agentic_compression.compression.presets import resolve_recipe

    binary = tmp_path / "recipe.json"
    binary.write_bytes(b"\xff\xfe\x00\x81binary")
    with pytest.raises(UserInputError, match="cannot be read \\(not UTF-8 text\\)"):
        resolve_recipe(str(binary))


def test_a_store_or_checkpoint_that_is_not_sqlite_is_one_line(tmp_path: Path) -> None:
    from agentic_compression.results.store import make_results_store
    from agentic_compression.workflow.checkpointer import make_checkpointer

    junk = tmp_path / "notes.txt"
    junk.write_text("this is not a database " * 200)
    with pytest.raises(UserInputError, match="not a usable SQLite database"):
        make_results_store(f"sqlite:///{junk}")
    with (
        pytest.raises(UserInputError, match=r"damaged or not SQLite.*results store and results"),
        make_checkpointer(f"sqlite:///{junk}"),
    ):
        pass


def test_resume_with_a_truncated_checkpoint_says_what_is_intact(tmp_path: Path) -> None:
    _finished(tmp_path)
    checkpoint = tmp_path / "done" / "checkpoint.sqlite"
    checkpoint.write_bytes(checkpoint.read_bytes()[:1500])
    app = typer.Typer()
    register(app)
    result = RUNNER.invoke(app, ["resume", "done", "--runs-dir", str(tmp_path)])
    assert isinstance(result.exception, UserInputError), result.output
    assert "results store and results.json are intact" in str(result.exception)


def test_a_corrupt_safetensors_file_is_one_line(tiny_llama, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from agentic_compression.models import load_model

    tiny_llama.save_pretrained(tmp_path)
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:4096])
    with pytest.raises(UserInputError, match=r"cannot load the model in .*partial download"):
        load_model(str(tmp_path))


def test_an_unreachable_hub_fails_fast_for_a_hub_model(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from agentic_compression.models import load_model

    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    with pytest.raises(UserInputError, match=r"cannot be reached.*not in the local cache"):
        load_model("someone/not-cached-model-xyz")  # refused before any download is tried


def test_a_checkpoint_server_that_never_connects_leaves_no_run(tmp_path: Path) -> None:
    app = typer.Typer()
    register(app)
    url = "postgresql://nobody@127.0.0.1:1/none"
    result = RUNNER.invoke(
        app, ["run", "--runs-dir", str(tmp_path), "--device", "cpu", "--checkpoint-url", url]
    )
    assert isinstance(result.exception, UserInputError) and "cannot connect" in str(
        result.exception
    )
    assert not (tmp_path / "results.sqlite").exists()  # so no run is listed as interrupted


def test_a_model_that_cannot_load_leaves_no_results_store(tmp_path: Path) -> None:
    shared = Path(__file__).resolve().parents[3] / "shared" / "benchmarks"
    if not shared.is_dir():
        pytest.skip("needs ../shared/benchmarks (the task data is checked before the model)")
    app = typer.Typer()
    register(app)
    missing = tmp_path / "no-such-model"
    missing.mkdir()
    result = RUNNER.invoke(
        app, ["run", "--runs-dir", str(tmp_path / "runs"), "--device", "cpu", "--model",
              str(missing), "--tasks", "arc_easy", "--data-dir", str(shared)],
    )  # fmt: skip
    assert isinstance(result.exception, UserInputError), result.output
    assert "has no config.json" in str(result.exception)
    assert not (tmp_path / "runs" / "results.sqlite").exists()


def test_accuracy_cache_keys_hold_the_device_and_libraries(tiny_llama) -> None:  # type: ignore[no-untyped-def]
    from importlib.metadata import version

    from agentic_compression.evaluation.accuracy import _scoring_environment
    from agentic_compression.evaluation.eval_cache import cache_entry_key

    where = _scoring_environment(tiny_llama)
    assert where["device"] == "cpu" and where["runtime"] == "torch"
    assert where["libraries"] == {
        "torch": version("torch"),
        "transformers": version("transformers"),
    }
    task = {"task": "arc_easy", "limit": 5}
    on_gpu = {**where, "device": "cuda:0"}
    assert cache_entry_key("m:r", {**task, **where}) != cache_entry_key("m:r", {**task, **on_gpu})


def test_third_party_output_goes_to_the_log_and_product_warnings_to_the_terminal(  # type: ignore[no-untyped-def]
    tmp_path: Path, capfd
) -> None:
    import logging
    import subprocess
    import sys
    import warnings

    from rich.console import Console

    from agentic_compression.cli.terminal import run_log, show_product_warnings

    screen = Console(file=io.StringIO(), width=200)
    show_product_warnings(screen)
    log = tmp_path / "run.log"
    with run_log(log):
        print("Running loglikelihood requests: 50%", file=sys.stderr)  # a tqdm bar
        subprocess.run(["git", "rev-parse", "HEAD"], cwd=tmp_path, check=False)  # fatal: ...
        warnings.warn("torch internal deprecation", UserWarning, stacklevel=1)
        logging.getLogger("lm_eval.evaluator").warning("building contexts for arc_easy")
        logging.getLogger("agentic_compression.planning").warning(
            "LLM planner unavailable (key sk-secret-123456=); offline planner proposes"
        )
    captured = capfd.readouterr()
    text = log.read_text()
    for line in ("Running loglikelihood", "not a git repository", "torch internal deprecation",
                 "building contexts", "LLM planner unavailable"):  # fmt: skip
        assert line in text
        assert line not in captured.err
    shown = screen.file.getvalue()  # type: ignore[attr-defined]
    assert "warning: LLM planner unavailable" in shown and "building contexts" not in shown
    logging.getLogger("agentic_compression").handlers.clear()


def test_size_is_measured_right_after_compression_and_cpu_flags_recorded(  # type: ignore[no-untyped-def]
    tiny_llama, embedded_tokenizer
) -> None:
    from agentic_compression.carbon.energy_meter import CodeCarbonMeter
    from agentic_compression.compression.presets import preset
    from agentic_compression.core.provenance import cpu_flags
    from agentic_compression.evaluation.candidate import MeasureConfig, evaluate_candidate
    from agentic_compression.evaluation.latency import LatencyConfig

    forwards: list[int] = []
    tiny_llama.register_forward_hook(lambda *_: forwards.append(1))
    sized_after: list[int] = []

    from agentic_compression.runtimes import torch_eager

    original = torch_eager.TorchDeployment.__init__

    def spy(self, model, tokenizer):  # type: ignore[no-untyped-def]
        original(self, model, tokenizer)
        sized_after.append(len(forwards))

    torch_eager.TorchDeployment.__init__ = spy  # type: ignore[method-assign]
    try:
        result = evaluate_candidate(
            _tiny_base(tiny_llama, embedded_tokenizer), preset("fp32"),
            MeasureConfig(latency=LatencyConfig(new_tokens=2, repeats=1), perplexity=None),
            CodeCarbonMeter("USA"),
        )  # fmt: skip
    finally:
        torch_eager.TorchDeployment.__init__ = original  # type: ignore[method-assign]
    assert result.status == "ok" and sized_after == [0] and forwards  # sized before any forward
    assert result.provenance.cpu_flags == cpu_flags()
    if Path("/proc/cpuinfo").exists() and "x86" in __import__("platform").machine():
        assert "avx2" in result.provenance.cpu_flags or "avx" in result.provenance.cpu_flags


def test_task_data_is_checked_before_the_model_loads(tmp_path: Path) -> None:
    app = typer.Typer()
    register(app)
    empty = tmp_path / "no-data"
    empty.mkdir()
    missing_model = tmp_path / "no-model"
    missing_model.mkdir()
    result = RUNNER.invoke(
        app, ["run", "--runs-dir", str(tmp_path / "runs"), "--device", "cpu", "--model",
              str(missing_model), "--tasks", "hellaswag", "--data-dir", str(empty)],
        env={"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"},
    )  # fmt: skip
    assert isinstance(result.exception, UserInputError)
    assert "hellaswag has no offline data" in str(result.exception)  # not the model's error


def test_bf16_without_native_support_is_searchable_but_never_seeded(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from agentic_compression.planning.space import SearchSpace

    monkeypatch.setattr("agentic_compression.core.provenance.cpu_flags", lambda: ("avx2", "fma"))
    space = SearchSpace.for_this_machine(("torch",))
    assert space.emulated == ("bf16",) and "bf16" in space.quantizations
    assert "bf16" not in [p.label for p in space.seeds()]
    monkeypatch.setattr(
        "agentic_compression.core.provenance.cpu_flags", lambda: ("avx2", "avx512_bf16")
    )
    native = SearchSpace.for_this_machine(("torch",))
    assert native.emulated == () and "bf16" in [p.label for p in native.seeds()]
