"""Named recipes users can type instead of JSON (``--recipe nf4``), and resolving a recipe argument."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agentic_compression.compression.recipe import Recipe
from agentic_compression.compression.registry import SearchChoice, choice_step, search_choices
from agentic_compression.core.runtime_config import GGUF_QUANT_BITS
from agentic_compression.errors import UserInputError

#: Pruning then quantization, the paper's combinations, by preset name.
COMBINED_PRESETS = (
    ("wanda-30", "int8-weight-only"),
    ("wanda-50", "int8-weight-only"),
    ("wanda-30", "nf4"),
    ("2of4", "int8-weight-only"),
)


def _single_step_presets() -> dict[str, tuple[str, list[dict[str, Any]]]]:
    """Preset name -> (label in combined names, steps), derived from the method registry."""
    found: dict[str, tuple[str, list[dict[str, Any]]]] = {}
    for choice in search_choices():
        if choice.sweep is None:
            found[_preset_name(choice)] = (choice.label, [choice_step(choice)])
            continue
        for value in choice.preset_values:
            name = f"{choice.label}-{round(value * 100)}"
            found[name] = (name, [choice_step(choice, **{choice.sweep: value})])
    return found


def _preset_name(choice: SearchChoice) -> str:
    return choice.preset or choice.label


def _all_presets() -> dict[str, list[dict[str, Any]]]:
    single = _single_step_presets()
    presets = {name: steps for name, (_, steps) in single.items()}
    for first, second in COMBINED_PRESETS:
        (label_a, steps_a), (label_b, steps_b) = single[first], single[second]
        presets[f"{label_a}+{label_b}"] = [*steps_a, *steps_b]
    return presets


#: name -> steps ("fp32", "nf4", "wanda-30", "wanda-30+int8" ...).
PRESETS: dict[str, list[dict[str, Any]]] = _all_presets()


#: name -> runtime settings: the base model exported to llama.cpp in each GGUF type
#: ("gguf-q4_k_m"), and with an importance matrix from the calibration text ("...-imatrix").
RUNTIME_PRESETS: dict[str, dict[str, Any]] = {
    f"gguf-{quant.lower()}": {"name": "llamacpp", "quant": quant} for quant in GGUF_QUANT_BITS
}
RUNTIME_PRESETS.update(
    {
        f"gguf-{quant.lower()}-imatrix": {"name": "llamacpp", "quant": quant, "imatrix": True}
        for quant in ("Q4_K_M", "Q4_0", "IQ4_NL", "IQ4_XS")
    }
)
#: ONNX Runtime GenAI on the CPU, built by its model builder ("onnx-int4": MatMulNBits int4).
RUNTIME_PRESETS.update(
    {f"onnx-{p}": {"name": "onnxruntime", "precision": p} for p in ("int4", "int8", "fp32")}
)
#: vLLM on a CUDA GPU: the checkpoint in bf16, or quantized by llm-compressor ("vllm-w4a16").
RUNTIME_PRESETS["vllm-bf16"] = {"name": "vllm", "dtype": "bfloat16"}
RUNTIME_PRESETS.update(
    {
        f"vllm-{scheme.lower()}": {"name": "vllm", "scheme": scheme}
        for scheme in ("W4A16", "W8A8", "FP8")
    }
)


#: Calibrated 4-bit rounding (AutoRound, symmetric groups of 32) stored in llama.cpp's Q4_0, whose
#: blocks hold that grid exactly. (torchao's int4 is asymmetric: it would round the grid again;
#: benchmarks/results/autoround.md measured that it loses.)
CALIBRATED_PRESETS: dict[str, tuple[list[dict[str, Any]], dict[str, Any] | None]] = {
    "autoround-q4_0": ([{"method": "autoround"}], {"name": "llamacpp", "quant": "Q4_0"}),
}


def preset_names() -> list[str]:
    return [*PRESETS, *CALIBRATED_PRESETS, *RUNTIME_PRESETS]


def preset(name: str) -> Recipe:
    """The named preset as a recipe, e.g. ``preset("nf4")`` or ``preset("gguf-q4_k_m")``."""
    if name in RUNTIME_PRESETS:
        return Recipe.from_steps([], name=name, runtime=RUNTIME_PRESETS[name])
    if name in CALIBRATED_PRESETS:
        steps, runtime = CALIBRATED_PRESETS[name]
        return Recipe.from_steps(steps, name=name, runtime=runtime)
    if name not in PRESETS:
        raise UserInputError(
            f"unknown recipe preset {name!r}; presets: {', '.join(preset_names())} "
            "(or pass a JSON file)"
        )
    return Recipe.from_steps(PRESETS[name], name=name)


def resolve_recipe(argument: str) -> Recipe:
    """A preset name, a path to a JSON recipe file, or inline JSON."""
    if argument in preset_names():
        return preset(argument)
    stripped = argument.strip()
    if stripped.startswith("{"):
        return Recipe.from_json(stripped)
    path = Path(argument).expanduser()
    if path.suffix == ".json" or path.exists():
        if not path.is_file():
            raise UserInputError(f"recipe file {argument!r} does not exist; check the path")
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError) as error:
            reason = "not UTF-8 text" if isinstance(error, UnicodeDecodeError) else error.strerror
            raise UserInputError(
                f"recipe file {argument!r} cannot be read ({reason}); pass a JSON recipe file"
            ) from None
        return Recipe.from_json(text)
    return preset(argument)  # raises with the list of presets
