"""Named recipes users can type instead of JSON (``--recipe nf4``), and resolving a recipe argument."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agentic_compression.core.recipe import Recipe
from agentic_compression.core.runtime_config import GGUF_QUANT_BITS
from agentic_compression.errors import UserInputError

_W8 = {"method": "int8_weight_only"}

#: name -> steps. "fp32" casts explicitly so that a "32-bit" run is 32-bit whatever was loaded.
PRESETS: dict[str, list[dict[str, Any]]] = {
    "fp32": [{"method": "cast", "dtype": "float32"}],
    "bf16": [{"method": "cast", "dtype": "bfloat16"}],
    "fp16": [{"method": "cast", "dtype": "float16"}],
    "int8-weight-only": [_W8],
    "int8-dynamic": [{"method": "int8_dynamic"}],
    "int4-weight-only": [{"method": "int4_weight_only", "group_size": 128}],
    "float8-dynamic": [{"method": "float8_dynamic"}],
    "nf4": [{"method": "bnb_4bit", "quant_type": "nf4"}],
    "fp4": [{"method": "bnb_4bit", "quant_type": "fp4"}],
    "bnb-int8": [{"method": "bnb_8bit"}],
    "magnitude-30": [{"method": "magnitude", "sparsity": 0.3}],
    "magnitude-50": [{"method": "magnitude", "sparsity": 0.5}],
    "wanda-30": [{"method": "wanda", "sparsity": 0.3}],
    "wanda-50": [{"method": "wanda", "sparsity": 0.5}],
    "2of4": [{"method": "nm", "n": 2, "m": 4, "criterion": "wanda"}],
    "4of8": [{"method": "nm", "n": 4, "m": 8, "criterion": "wanda"}],
    "wanda-30+int8": [{"method": "wanda", "sparsity": 0.3}, _W8],
    "wanda-50+int8": [{"method": "wanda", "sparsity": 0.5}, _W8],
    "wanda-30+nf4": [{"method": "wanda", "sparsity": 0.3}, {"method": "bnb_4bit"}],
    "2of4+int8": [{"method": "nm", "n": 2, "m": 4}, _W8],
}


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


def preset_names() -> list[str]:
    return [*PRESETS, *RUNTIME_PRESETS]


def preset(name: str) -> Recipe:
    """The named preset as a recipe, e.g. ``preset("nf4")`` or ``preset("gguf-q4_k_m")``."""
    if name in RUNTIME_PRESETS:
        return Recipe.from_steps([], name=name, runtime=RUNTIME_PRESETS[name])
    if name not in PRESETS:
        raise UserInputError(
            f"unknown recipe preset {name!r}; presets: {', '.join(preset_names())} "
            "(or pass a JSON file)"
        )
    return Recipe.from_steps(PRESETS[name], name=name)


def resolve_recipe(argument: str) -> Recipe:
    """A preset name, a path to a JSON recipe file, or inline JSON."""
    if argument in PRESETS or argument in RUNTIME_PRESETS:
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
