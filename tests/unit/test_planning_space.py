"""The search space: recipe <-> point round trips, the (bits, sparsity) vocabulary, seeds, nearest."""

from __future__ import annotations

import pytest

from agentic_compression.compression.presets import preset
from agentic_compression.compression.recipe import Recipe
from agentic_compression.planning.space import (
    CPU_QUANTIZATIONS,
    QUANTIZATION_STEPS,
    SearchSpace,
    SpacePoint,
    from_bits_sparsity,
    to_bits_sparsity,
)


def test_every_grid_point_round_trips_through_its_recipe() -> None:
    space = SearchSpace(quantizations=tuple(QUANTIZATION_STEPS))
    grid = space.grid()
    # none + 2 unstructured x 7 levels + 2:4 + MLP channels x 5 levels (up to 0.5) + layers x 3
    # levels (up to 0.3) = 24 pruning settings, x 11 precisions (fp16 and mixed-6bit too)
    assert len(grid) == 24 * 11
    hashes = set()
    for point in grid:
        recipe = space.to_recipe(point)
        assert space.from_recipe(recipe) == point
        assert space.from_recipe(Recipe.from_json(recipe.to_json())) == point
        hashes.add(recipe.hash)
    assert len(hashes) == len(grid)


def test_readable_names_and_step_order() -> None:
    space = SearchSpace()
    recipe = space.to_recipe(SpacePoint("wanda", 0.3, "nf4"))
    assert recipe.name == "wanda-30+nf4"
    assert [s.method for s in recipe.steps] == ["wanda", "bnb_4bit"]
    assert recipe.to_dict()["steps"][1]["quant_type"] == "nf4"
    assert space.to_recipe(SpacePoint("none", 0.0, "fp32")).name == "fp32"
    assert space.to_recipe(SpacePoint("nm-2:4", 0.0, "bf16")).name == "2of4+bf16"
    assert space.to_recipe(SpacePoint("magnitude", 0.7, "int8_dynamic")).name == (
        "magnitude-70+int8-dynamic"
    )


def test_presets_are_read_as_their_points() -> None:
    space = SearchSpace()
    assert space.from_recipe(preset("fp32")) == SpacePoint("none", 0.0, "fp32")
    assert space.from_recipe(preset("nf4")) == SpacePoint("none", 0.0, "nf4")
    assert space.from_recipe(preset("wanda-30+int8")) == SpacePoint(
        "wanda", 0.3, "int8_weight_only"
    )
    # A pruned recipe without a precision step is fp32, and so is the empty recipe.
    assert space.from_recipe(preset("wanda-50")) == SpacePoint("wanda", 0.5, "fp32")
    assert space.from_recipe(preset("2of4")) == SpacePoint("nm-2:4", 0.0, "fp32")
    assert space.from_recipe(Recipe()) == SpacePoint("none", 0.0, "fp32")


def test_recipes_outside_the_space_are_none() -> None:
    space = SearchSpace()
    assert space.from_recipe(preset("4of8")) is None  # only 2:4 is in the space
    assert space.from_recipe(preset("fp16")) is None
    assert space.from_recipe(preset("float8-dynamic")) is None  # FP8 GPUs only, not in CPU space
    odd = Recipe.from_steps([{"method": "wanda", "sparsity": 0.3, "calibration_samples": 8}])
    assert space.from_recipe(odd) is None  # non-default calibration
    blocks = Recipe.from_steps([{"method": "bnb_4bit", "blocksize": 128}])
    assert space.from_recipe(blocks) is None
    assert space.from_recipe(Recipe.from_steps([{"method": "wanda", "sparsity": 0.35}])) is None
    small = SearchSpace(pruning=("none",), quantizations=("fp32", "nf4"))
    assert small.from_recipe(preset("wanda-30")) is None
    assert not small.contains(SpacePoint("none", 0.0, "bf16"))


def test_int4_is_searched_on_a_cpu_and_fp8_only_on_an_fp8_gpu() -> None:
    assert "int4_weight_only" in CPU_QUANTIZATIONS  # torchao's CPU int4 kernel (tinygemm layout)
    assert SearchSpace().from_recipe(preset("int4-weight-only")) == SpacePoint(
        "none", 0.0, "int4_weight_only"
    )
    assert "float8_dynamic" not in CPU_QUANTIZATIONS
    fp8 = SearchSpace(quantizations=(*CPU_QUANTIZATIONS, "float8_dynamic"))
    point = SpacePoint("none", 0.0, "float8_dynamic")
    assert fp8.from_recipe(fp8.to_recipe(point)) == point
    with pytest.raises(ValueError, match="not in this search space"):
        SearchSpace().to_recipe(point)


@pytest.mark.parametrize(
    ("bits", "sparsity", "label"),
    [
        (32, 0.0, "fp32"),
        (16, 0.1, "wanda-10+bf16"),
        (8, 0.3, "wanda-30+int8"),
        (4, 0.7, "wanda-70+nf4"),
        (8, 0.1 + 0.2, "wanda-30+int8"),  # float drift is rounded away
    ],
)
def test_bits_sparsity_vocabulary(bits: int, sparsity: float, label: str) -> None:
    point = from_bits_sparsity(bits, sparsity)
    assert point.label == label
    assert to_bits_sparsity(point) == (bits, round(sparsity, 2))


def test_bits_sparsity_rejects_unknown_bits() -> None:
    with pytest.raises(ValueError, match="bits must be one of"):
        from_bits_sparsity(2, 0.0)
    assert to_bits_sparsity(SpacePoint("none", 0.0, "int8_dynamic")) == (8, 0.0)
    assert to_bits_sparsity(SpacePoint("nm-2:4", 0.0, "fp4")) == (4, 0.5)


def test_seeds_are_known_good_and_in_space_only() -> None:
    labels = [p.label for p in SearchSpace().seeds()]
    assert labels == ["fp32", "bf16", "int8", "nf4", "wanda-30+int8"]
    no_pruning = SearchSpace(pruning=("none",))
    assert [p.label for p in no_pruning.seeds()] == ["fp32", "bf16", "int8", "nf4"]


def test_nearest_untried_point() -> None:
    space = SearchSpace()
    target = SpacePoint("wanda", 0.3, "nf4")
    assert space.nearest(target, set()) == target
    # 0.1 sparsity away (0.25) beats another 4-bit format (0.5); ties go to grid order (int4 first).
    assert space.nearest(target, {target}) == SpacePoint("wanda", 0.2, "nf4")
    near = {target, SpacePoint("wanda", 0.2, "nf4"), SpacePoint("wanda", 0.4, "nf4")}
    assert space.nearest(target, near) == SpacePoint("wanda", 0.1, "nf4")
    near |= {SpacePoint("wanda", 0.1, "nf4")}
    assert space.nearest(target, near) == SpacePoint("wanda", 0.3, "int4_weight_only")
    tiny = SearchSpace(pruning=("none",), quantizations=("fp32",))
    assert tiny.nearest(target, set(tiny.grid())) is None


def test_bad_spaces_are_rejected() -> None:
    with pytest.raises(ValueError, match="bad search space"):
        SearchSpace(pruning=("sparsegpt",))
    with pytest.raises(ValueError, match="sparsity levels"):
        SearchSpace(sparsity_levels=(0.0, 0.5))
    assert SearchSpace(sparsity_levels=(0.5, 0.1 + 0.2)).sparsity_levels == (0.3, 0.5)
