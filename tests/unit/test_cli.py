"""The command line: bad input gives one line and exit status 2; listing commands work."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from agentic_compression.cli.app import app

RUNNER = CliRunner()


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    command = [sys.executable, "-m", "agentic_compression.cli.app", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["evaluate", "--recipe", "nf5"], "unknown recipe preset 'nf5'"),
        (
            ["evaluate", "--recipe", '{"steps": [{"method": "wanda", "sparsity": 2}]}'],
            "bad parameters for method 'wanda'",
        ),
        (
            ["evaluate", "--recipe", "nf4", "--model", "./no/such/folder"],
            "neither a model folder nor a .gguf file",
        ),
        (["evaluate", "--recipe", "nf4", "--country", "XXX"], "unknown country code 'XXX'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], fragment: str) -> None:
    result = _cli(*args)
    assert result.returncode == 2, result.stderr
    assert fragment in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) <= 2 and "Traceback" not in result.stderr  # rich may wrap one long line


def test_unknown_hub_model_is_a_user_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = _cli("evaluate", "--recipe", "nf4", "--model", "nobody/no-such-model-xyz",
                  "--output", str(tmp_path / "r.json"))  # fmt: skip
    assert result.returncode == 2
    assert "cannot load model 'nobody/no-such-model-xyz'" in result.stderr
    assert "Traceback" not in result.stderr


def test_methods_lists_every_method_and_preset() -> None:
    result = RUNNER.invoke(app, ["methods"], terminal_width=200)
    assert result.exit_code == 0
    for name in (
        "int8_weight_only",
        "bnb_4bit",
        "wanda",
        "nm",
        "magnitude",
        "cast",
        "wanda-30+int8",
    ):
        assert name in result.output


def test_methods_json_has_parameter_schemas() -> None:
    import json

    result = RUNNER.invoke(app, ["methods", "--json"])
    data = json.loads(result.output)
    assert data["methods"]["wanda"]["properties"]["sparsity"]["exclusiveMaximum"] == 1.0
    assert data["presets"]["nf4"] == [{"method": "bnb_4bit", "quant_type": "nf4"}]
