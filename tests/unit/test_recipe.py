"""Recipes: validation, JSON round trip, stable hashes, presets, ordering rules."""

from __future__ import annotations

import json

import pytest

from agentic_compression.compression.presets import PRESETS, preset, resolve_recipe
from agentic_compression.compression.recipe import Recipe
from agentic_compression.compression.registry import registered_methods
from agentic_compression.errors import UserInputError


def test_every_preset_parses_and_round_trips() -> None:
    for name in PRESETS:
        recipe = preset(name)
        again = Recipe.from_json(recipe.to_json())
        assert again == recipe
        assert again.hash == recipe.hash


def test_hash_includes_defaults_and_ignores_name() -> None:
    explicit = Recipe.from_steps([{"method": "wanda", "sparsity": 0.5, "calibration_samples": 32}])
    implicit = Recipe.from_steps([{"method": "wanda"}], name="whatever")
    assert explicit.hash == implicit.hash
    assert len(explicit.hash) == 16
    other = Recipe.from_steps([{"method": "wanda", "sparsity": 0.3}])
    assert other.hash != explicit.hash


def test_hash_depends_on_order() -> None:
    a = Recipe.from_steps([{"method": "cast", "dtype": "bfloat16"}, {"method": "magnitude"}])
    b = Recipe.from_steps([{"method": "magnitude"}, {"method": "cast", "dtype": "bfloat16"}])
    assert a.hash != b.hash


def test_known_methods_are_registered() -> None:
    names = set(registered_methods())
    assert {"cast", "int8_weight_only", "int8_dynamic", "int4_weight_only", "bnb_4bit"} <= names
    assert {"bnb_8bit", "magnitude", "wanda", "nm"} <= names


@pytest.mark.parametrize(
    ("steps", "fragment"),
    [
        ([{"method": "quantum"}], "unknown compression method 'quantum'"),
        ([{"method": "wanda", "sparsity": 1.5}], "bad parameters for method 'wanda'"),
        ([{"method": "wanda", "sparsitty": 0.5}], "sparsitty"),
        ([{"method": "nm", "n": 4, "m": 4}], "n must be smaller than m"),
        ([{"method": "bnb_4bit", "quant_type": "nf3"}], "quant_type"),
        ([{"sparsity": 0.5}], "'method' key"),
        (
            [{"method": "int8_weight_only"}, {"method": "wanda"}],
            "put pruning, recovery training and casts before",
        ),
        ([{"method": "bnb_4bit"}, {"method": "int8_weight_only"}], "after quantization step"),
    ],
)
def test_bad_steps_raise_one_line_user_errors(steps: list[dict], fragment: str) -> None:
    with pytest.raises(UserInputError) as info:
        Recipe.from_steps(steps)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_resolve_recipe_from_preset_inline_json_and_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert resolve_recipe("nf4").steps[0].method == "bnb_4bit"
    inline = resolve_recipe('{"name": "mine", "steps": [{"method": "magnitude", "sparsity": 0.2}]}')
    assert inline.name == "mine" and inline.steps[0].params()["sparsity"] == 0.2
    path = tmp_path / "r.json"
    path.write_text(json.dumps(preset("wanda-30+int8").to_dict()))
    assert resolve_recipe(str(path)).hash == preset("wanda-30+int8").hash
    with pytest.raises(UserInputError, match="unknown recipe preset 'nf5'"):
        resolve_recipe("nf5")
    with pytest.raises(UserInputError, match="does not exist"):
        resolve_recipe(str(tmp_path / "missing.json"))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(UserInputError, match="not valid JSON"):
        resolve_recipe(str(bad))
    with pytest.raises(UserInputError, match="unknown recipe keys"):
        Recipe.from_dict({"steps": [], "extra": 1})
