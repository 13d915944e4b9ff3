"""The method registry is the one source of methods, their search choices and their runtimes (#10.21)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import agentic_compression
from agentic_compression.cli.app import app
from agentic_compression.compression.presets import PRESETS
from agentic_compression.compression.recipe import Recipe
from agentic_compression.compression.registry import (
    ALL_RUNTIMES,
    registered_methods,
    search_choices,
)
from agentic_compression.core.runtime_config import GGUF_QUANT_BITS, RUNTIME_CONFIGS
from agentic_compression.errors import UserInputError
from agentic_compression.planning.space import (
    CPU_QUANTIZATIONS,
    PRUNING_METHODS,
    QUANTIZATION_STEPS,
    SearchSpace,
    SpacePoint,
    weight_bits,
)

PACKAGE = Path(agentic_compression.__file__).parent


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_core_imports_nothing_above_it() -> None:
    for path in sorted((PACKAGE / "core").glob("*.py")):
        above = {
            name
            for name in _imported_modules(path)
            if name.startswith("agentic_compression.")
            and not name.startswith("agentic_compression.core")
            and name not in ("agentic_compression.errors",)
        }
        assert not above, f"{path.name} imports {above}"


def test_every_searched_choice_is_in_the_space_and_round_trips() -> None:
    precision = [c.name for c in search_choices("precision")]
    pruning = [c.name for c in search_choices("pruning") if c.searched]
    assert list(QUANTIZATION_STEPS) == precision
    assert ("none", *pruning) == PRUNING_METHODS
    # CPU choices are the searched ones that need no GPU, in registry order.
    assert CPU_QUANTIZATIONS == (
        "fp32",
        "bf16",
        "int8_weight_only",
        "int8_dynamic",
        "int4_weight_only",
        "nf4",
        "fp4",
        "bnb_8bit",
    )
    space = SearchSpace(quantizations=tuple(QUANTIZATION_STEPS), sparsity_levels=(0.3,))
    for point in space.grid():
        recipe = space.to_recipe(point)
        assert space.from_recipe(recipe) == point
        assert recipe.name == point.label


def test_bits_come_from_the_registry_and_the_runtime_settings() -> None:
    assert weight_bits("nf4") == 4.0
    assert weight_bits("int8_weight_only") == 8.0
    assert weight_bits("gguf-q4_k_m") == GGUF_QUANT_BITS["Q4_K_M"]
    assert weight_bits("onnx-int4") == 4.0
    assert weight_bits("vllm-w8a8") == 8.0
    with pytest.raises(ValueError, match="unknown precision choice"):
        weight_bits("int3")


def test_presets_are_derived_from_the_choices() -> None:
    labels = {c.preset or c.label for c in search_choices() if c.sweep is None}
    assert labels <= set(PRESETS)
    assert PRESETS["wanda-30+nf4"] == [
        {"method": "wanda", "sparsity": 0.3},
        {"method": "bnb_4bit", "quant_type": "nf4"},
    ]
    assert PRESETS["4of8"] == [{"method": "nm", "n": 4, "m": 8, "criterion": "wanda"}]


def test_runtimes_facet_decides_what_a_runtime_can_serve() -> None:
    assert tuple(RUNTIME_CONFIGS) == ALL_RUNTIMES
    methods = registered_methods()
    assert methods["bnb_4bit"].config_cls.runtimes == ("torch",)
    assert methods["wanda"].config_cls.runtimes == ALL_RUNTIMES
    Recipe.from_steps([{"method": "wanda"}], runtime={"name": "onnxruntime"})
    with pytest.raises(UserInputError, match=r"onnxruntime cannot load \(only torch"):
        Recipe.from_steps([{"method": "int8_dynamic"}], runtime={"name": "onnxruntime"})


def test_space_labels_and_sparsity_follow_the_choices() -> None:
    assert SpacePoint("nm-2:4", 0.0, "bnb_8bit").label == "2of4+bnb-int8"
    assert SpacePoint("nm-2:4", 0.0, "fp32").effective_sparsity == 0.5
    assert SpacePoint("magnitude", 0.4, "gguf-q8_0").label == "magnitude-40+gguf-q8_0"


def test_methods_command_lists_runtimes_and_choices() -> None:
    result = CliRunner().invoke(app, ["methods", "--json"])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.output)["methods"]
    assert listed["int8_weight_only"]["runtimes"] == ["torch"]
    assert listed["nm"]["search_choices"] == ["nm-2:4"]
    assert listed["cast"]["runtimes"] == list(ALL_RUNTIMES)


def test_each_pruning_choice_is_searched_within_its_own_range() -> None:
    space = SearchSpace(quantizations=("fp32",))
    assert space.levels_for("wanda") == (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
    assert space.levels_for("mlp-channels") == (0.1, 0.2, 0.3, 0.4, 0.5)
    assert space.levels_for("drop-layers") == (0.1, 0.2, 0.3)
    assert not space.contains(SpacePoint("drop-layers", 0.5, "fp32"))
    recipe = space.to_recipe(SpacePoint("mlp-channels", 0.3, "fp32"))
    assert recipe.name == "mlp-30+fp32"
    assert recipe.steps[0].method == "mlp_channels" and recipe.steps[0].params()["fraction"] == 0.3
    with pytest.raises(ValueError, match=r"needs a sparsity level up to 0\.3"):
        SearchSpace(pruning=("drop-layers",), sparsity_levels=(0.5,))
