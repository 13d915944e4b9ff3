"""Where a candidate is served: the runtime part of a recipe, as frozen, validated data.

A candidate is a recipe *and* a runtime: the same pruned model served by PyTorch eager and by
llama.cpp at Q4_K_M costs and saves different things, so the runtime and its settings are part of the
recipe (and of its hash). :class:`TorchSettings` is the default and keeps the hash of a recipe that
names no runtime unchanged. The behaviour of each runtime (export, measurement) lives in
:mod:`agentic_compression.runtimes`; this module holds only what is stored and hashed.

Example:
    >>> parse_runtime({"name": "llamacpp", "quant": "Q4_K_M"}).label
    'llamacpp-Q4_K_M'
    >>> parse_runtime({"name": "llamacpp", "quant": "Q3_K"})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    agentic_compression.errors.UserInputError: llamacpp has no quant type 'Q3_K'; it has: F32, F16, ...
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from agentic_compression.errors import UserInputError

#: GGUF weight types the llama.cpp runtime can write, with the nominal bits per weight of the
#: quantized matrices (the real mix of every artefact is read back from the file and recorded).
GGUF_QUANT_BITS: Mapping[str, float] = {
    "F32": 32,
    "F16": 16,
    "BF16": 16,
    "Q8_0": 8.5,
    "Q6_K": 6.5625,
    "Q5_K_M": 5.5,
    "Q5_1": 6,
    "Q5_0": 5.5,
    "Q4_K_M": 4.5,
    "Q4_1": 5,
    "Q4_0": 4.5,
    "IQ4_NL": 4.5,
    "IQ4_XS": 4.25,
}


class RuntimeConfig(BaseModel):
    """Base of every runtime's settings. ``name`` selects the runtime."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    is_default: ClassVar[bool] = False

    @property
    def label(self) -> str:
        return self.name

    def params(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @property
    def weight_bits(self) -> float | None:
        """Bits per weight the runtime stores on export; None where the recipe's steps decide."""
        return None


class TorchSettings(RuntimeConfig):
    """PyTorch eager on the machine's device, the model held in memory (the default)."""

    name: Literal["torch"] = "torch"
    is_default: ClassVar[bool] = True


class LlamaCppSettings(RuntimeConfig):
    """llama.cpp serving a GGUF file: the weights are written in ``quant`` on export.

    ``imatrix`` weights the quantization error by an importance matrix measured on the calibration
    text (never evaluation text). ``threads`` None means the torch thread count of the process, so
    both runtimes use the same cores. ``context`` and ``batch`` are llama.cpp's n_ctx and n_batch.
    ``kv_cache`` is the type of the K and V cache (f16 is llama.cpp's default). ``sink_tokens``
    (None: off) keeps generating past ``context`` in bounded memory: the first ``sink_tokens`` stay
    in the cache (attention sinks) and the older half of the rest is dropped whenever it fills
    (llama.cpp's context shift, ``llama-server --context-shift --keep N``).

    Mixed precision per tensor: ``tensor_types`` maps a regular expression, searched in GGUF tensor
    names, to a type (``{"ffn_down": "Q8_0"}``, as ``llama-quantize --tensor-type``; the first
    matching pattern wins). ``mix_bits`` asks for an automatic allocation: the decoder's matrices get
    types from ``mix_types`` by their sensitivity measured on the calibration text, at most
    ``mix_bits`` bits per weight on average (see ``compression.sensitivity``); patterns in
    ``tensor_types`` still fix the tensors they match.
    """

    name: Literal["llamacpp"] = "llamacpp"
    quant: str = "Q8_0"
    imatrix: bool = False
    threads: int | None = Field(None, ge=1)
    context: int = Field(2048, ge=64)
    batch: int = Field(512, ge=16)
    kv_cache: Literal["f16", "q8_0", "q4_0"] = "f16"
    sink_tokens: int | None = Field(None, ge=0, le=256)
    tensor_types: dict[str, str] = Field(default_factory=dict)
    mix_bits: float | None = Field(None, gt=1.0, le=32.0)
    mix_types: tuple[str, ...] = ("Q4_0", "Q5_0", "Q8_0")

    @field_validator("quant")
    @classmethod
    def _known_quant(cls, value: str) -> str:
        upper = value.upper()
        if upper not in GGUF_QUANT_BITS:
            raise ValueError(
                f"llamacpp has no quant type {value!r}; it has: {', '.join(GGUF_QUANT_BITS)}"
            )
        return upper

    @field_validator("tensor_types")
    @classmethod
    def _known_tensor_types(cls, value: dict[str, str]) -> dict[str, str]:
        checked = {}
        for pattern, kind in value.items():
            try:
                re.compile(pattern)
            except re.error as error:
                raise ValueError(
                    f"tensor_types pattern {pattern!r} is not a regex: {error}"
                ) from None
            checked[pattern] = _single_type(kind, "tensor_types")
        return checked

    @field_validator("mix_types")
    @classmethod
    def _known_mix_types(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        kinds = tuple(_single_type(kind, "mix_types") for kind in value)
        if len(kinds) < 2:
            raise ValueError("mix_types needs at least two types to choose between")
        return tuple(sorted(set(kinds), key=lambda kind: GGUF_QUANT_BITS[kind]))

    @property
    def label(self) -> str:
        suffix = "+imatrix" if self.imatrix else ""
        if self.mix_bits is not None:
            suffix += f"+mix{self.mix_bits:g}"
        if self.tensor_types:
            suffix += f"+types{len(self.tensor_types)}"
        if self.kv_cache != "f16":
            suffix += f"+kv-{self.kv_cache}"
        if self.sink_tokens is not None:
            suffix += f"+sink{self.sink_tokens}"
        return f"llamacpp-{self.quant}{suffix}"

    @property
    def weight_bits(self) -> float:
        return self.mix_bits if self.mix_bits is not None else GGUF_QUANT_BITS[self.quant]


def _single_type(kind: str, field: str) -> str:
    """A GGUF type one tensor can have (not a recipe-level mix such as Q4_K_M)."""
    upper = kind.upper()
    if upper not in GGUF_QUANT_BITS or upper.endswith("_M"):
        singles = [t for t in GGUF_QUANT_BITS if not t.endswith("_M")]
        raise ValueError(f"{field}: {kind!r} is not a tensor type; use one of {', '.join(singles)}")
    return upper


class OnnxRuntimeSettings(RuntimeConfig):
    """ONNX Runtime GenAI on the CPU, the model built by its model builder on export.

    ``precision`` int4 and int8 are weight-only MatMulNBits quantization in blocks of
    ``block_size`` weights (``algo``: round-to-nearest ``rtn``/``default`` or ``k_quant``); fp32 keeps
    float weights. ``accuracy_level`` is MatMulNBits' compute type: 4 quantizes activations to int8
    (the CPU default, fastest), 1 computes in fp32. ``threads`` None means the torch thread count of
    the process, so every runtime uses the same cores.
    """

    name: Literal["onnxruntime"] = "onnxruntime"
    precision: Literal["int4", "int8", "fp32"] = "int4"
    block_size: Literal[16, 32, 64, 128, 256] = 32
    algo: Literal["default", "rtn", "k_quant"] = "default"
    accuracy_level: Literal[1, 2, 3, 4] = 4
    threads: int | None = Field(None, ge=1)
    context: int = Field(2048, ge=64)

    @property
    def label(self) -> str:
        return f"onnxruntime-{self.precision}"

    @property
    def weight_bits(self) -> float:
        return {"int4": 4.0, "int8": 8.0, "fp32": 32.0}[self.precision]


class VllmSettings(RuntimeConfig):
    """vLLM on a CUDA GPU serving a Hugging Face checkpoint folder.

    ``scheme`` quantizes the compressed model with llm-compressor on export and writes a
    compressed-tensors checkpoint: ``W4A16`` and ``W8A8`` with GPTQ on the calibration text,
    ``FP8`` with dynamic per-token activation scales (no calibration; needs compute capability 8.9+).
    ``none`` serves the (pruned, cast) model as it is. ``gpu_memory`` is the share of the GPU's
    memory vLLM may take; ``context`` its max_model_len.
    """

    name: Literal["vllm"] = "vllm"
    scheme: Literal["none", "W4A16", "W8A8", "FP8"] = "none"
    dtype: Literal["auto", "bfloat16", "float16"] = "auto"
    gpu_memory: float = Field(0.5, gt=0.05, le=0.95)
    context: int = Field(2048, ge=64)

    @property
    def label(self) -> str:
        return "vllm" if self.scheme == "none" else f"vllm-{self.scheme}"

    @property
    def weight_bits(self) -> float:
        # "auto" serves the checkpoint's dtype: bf16 or fp16 for the models vLLM serves.
        return {"W4A16": 4.0, "W8A8": 8.0, "FP8": 8.0}.get(self.scheme, 16.0)


RUNTIME_CONFIGS: dict[str, type[RuntimeConfig]] = {
    "torch": TorchSettings,
    "llamacpp": LlamaCppSettings,
    "onnxruntime": OnnxRuntimeSettings,
    "vllm": VllmSettings,
}


def parse_runtime(data: Mapping[str, Any] | str | None) -> RuntimeConfig:
    """A validated runtime config from ``{"name": ..., **settings}`` or a bare name (None: torch)."""
    if data is None:
        return TorchSettings()
    if isinstance(data, str):
        data = {"name": data}
    if not isinstance(data, Mapping) or "name" not in data:
        raise UserInputError(f"a runtime must be an object with a 'name' key, got {data!r}")
    name = str(data["name"])
    if name not in RUNTIME_CONFIGS:
        raise UserInputError(f"unknown runtime {name!r}; runtimes: {', '.join(RUNTIME_CONFIGS)}")
    try:
        return RUNTIME_CONFIGS[name](**dict(data))
    except ValidationError as error:
        messages = "; ".join(
            str(item["msg"]).removeprefix("Value error, ") for item in error.errors()
        )
        raise UserInputError(messages) from None
