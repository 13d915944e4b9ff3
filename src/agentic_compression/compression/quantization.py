"""Weight quantization: torchao (int8 weight-only, int8 dynamic, int4 weight-only, float8 dynamic)
and bitsandbytes.

Linear layers of the decoder blocks are quantized; the output head and embeddings are skipped (see
``layers.SKIPPED_LAYER_NAMES``). torchao's int4 weight-only kernel needs CUDA in torchao 0.18, and its
float8 kernels a GPU of compute capability 8.9+ (Ada, Hopper): elsewhere they fail with a recorded
reason instead of pretending.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from agentic_compression.compression.layers import is_skipped, linear_layers
from agentic_compression.compression.registry import MethodConfig, SearchChoice, register_method
from agentic_compression.errors import MethodUnavailableError


class _Quantization(MethodConfig):
    family: ClassVar[str] = "quantization"
    quantizes_weights: ClassVar[bool] = True
    runtimes: ClassVar[tuple[str, ...]] = ("torch",)


class Int8WeightOnly(_Quantization):
    """torchao int8 weight-only (per-channel scales); activations stay in float."""

    method: ClassVar[str] = "int8_weight_only"
    summary: ClassVar[str] = "torchao int8 weight-only quantization of linear layers"
    search_choices: ClassVar[tuple[SearchChoice, ...]] = (
        SearchChoice("int8_weight_only", "int8", bits=8, preset="int8-weight-only"),
    )


class Int8Dynamic(_Quantization):
    """torchao int8 weights with dynamically quantized int8 activations."""

    method: ClassVar[str] = "int8_dynamic"
    summary: ClassVar[str] = "torchao int8 weights + dynamic int8 activations"
    search_choices: ClassVar[tuple[SearchChoice, ...]] = (
        SearchChoice("int8_dynamic", "int8-dynamic", bits=8),
    )


class Int4WeightOnly(_Quantization):
    """torchao int4 weight-only with grouped scales and zero points (tinygemm's packed layout)."""

    method: ClassVar[str] = "int4_weight_only"
    summary: ClassVar[str] = "torchao int4 weight-only, grouped scales (CPU and CUDA kernels)"
    search_choices: ClassVar[tuple[SearchChoice, ...]] = (
        # Groups of 64 divide the widths of the common small models (576, 896, 1536, 2048, ...).
        SearchChoice(
            "int4_weight_only", "int4", {"group_size": 64}, bits=4, preset="int4-weight-only"
        ),
    )

    group_size: Literal[32, 64, 128, 256] = 128


class Float8Dynamic(_Quantization):
    """torchao float8 (e4m3) weights with dynamic float8 activations (CUDA, capability 8.9+)."""

    method: ClassVar[str] = "float8_dynamic"
    summary: ClassVar[str] = (
        "torchao float8 weights + dynamic float8 activations (needs an FP8 GPU)"
    )
    search_choices: ClassVar[tuple[SearchChoice, ...]] = (
        SearchChoice("float8_dynamic", "fp8", bits=8, hardware="cuda-fp8", preset="float8-dynamic"),
    )

    granularity: Literal["per_tensor", "per_row"] = "per_row"


class Bnb4Bit(_Quantization):
    """bitsandbytes 4-bit (NF4 or FP4) blockwise quantization, as in QLoRA."""

    method: ClassVar[str] = "bnb_4bit"
    summary: ClassVar[str] = "bitsandbytes 4-bit NF4/FP4 blockwise quantization"
    search_choices: ClassVar[tuple[SearchChoice, ...]] = (
        SearchChoice("nf4", "nf4", {"quant_type": "nf4"}, bits=4),
        SearchChoice("fp4", "fp4", {"quant_type": "fp4"}, bits=4),
    )

    quant_type: Literal["nf4", "fp4"] = "nf4"
    blocksize: Literal[32, 64, 128, 256, 512] = 64
    double_quant: bool = False
    compute_dtype: Literal["float32", "bfloat16", "float16"] = "float32"


class Bnb8Bit(_Quantization):
    """bitsandbytes LLM.int8() with outlier threshold."""

    method: ClassVar[str] = "bnb_8bit"
    summary: ClassVar[str] = "bitsandbytes LLM.int8() with outlier decomposition"
    search_choices: ClassVar[tuple[SearchChoice, ...]] = (
        SearchChoice("bnb_8bit", "bnb-int8", bits=8),
    )

    threshold: float = Field(6.0, ge=0.0)


def _torchao_quantize(model: Any, config: Any) -> int:
    import torch
    from torchao.quantization import quantize_

    def wanted(module: Any, fqn: str) -> bool:
        return isinstance(module, torch.nn.Linear) and not is_skipped(fqn)

    count = sum(1 for _ in linear_layers(model))
    quantize_(model, config, filter_fn=wanted)
    return count


@register_method(Int8WeightOnly)
def apply_int8_weight_only(model: Any, config: Int8WeightOnly, context: Any) -> str:
    from torchao.quantization import Int8WeightOnlyConfig

    return f"{_torchao_quantize(model, Int8WeightOnlyConfig())} linear layers to int8 weights"


@register_method(Int8Dynamic)
def apply_int8_dynamic(model: Any, config: Int8Dynamic, context: Any) -> str:
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig

    count = _torchao_quantize(model, Int8DynamicActivationInt8WeightConfig())
    return f"{count} linear layers to int8 weights with dynamic int8 activations"


def weight_only_config(kind: str, group_size: int, device: Any) -> Any:
    """torchao's weight-only config of ``kind`` (``int8``: per-channel; ``int4``: groups of
    ``group_size``) for a model on ``device``. torchao 0.18 keeps its CPU int4 (tinygemm's packed
    kernel, ``Int4OpaqueTensor``) under its prototype namespace; CUDA uses ``Int4WeightOnlyConfig``.
    """
    if kind == "int8":
        from torchao.quantization import Int8WeightOnlyConfig

        return Int8WeightOnlyConfig()
    if device.type == "cuda":
        from torchao.quantization import Int4WeightOnlyConfig

        return Int4WeightOnlyConfig(group_size=group_size)
    if device.type != "cpu":
        raise MethodUnavailableError(
            f"torchao has int4 weight-only kernels for CPU and CUDA, not {device.type}: "
            "use int8_weight_only"
        )
    from torchao.prototype.quantization.int4.inference_workflow import (
        PrototypeInt4WeightOnlyConfig,
    )

    return PrototypeInt4WeightOnlyConfig(group_size=group_size)


def check_group_size(model: Any, group_size: int, method: str) -> None:
    """Refuse a group size that does not divide every linear layer's inputs (torchao would skip
    those layers silently)."""
    widths = sorted({layer.in_features for _, layer in linear_layers(model)})
    bad = [width for width in widths if width % group_size]
    if bad:
        fits = [g for g in (256, 128, 64, 32) if all(w % g == 0 for w in widths)]
        raise MethodUnavailableError(
            f"{method} group_size {group_size} does not divide the {bad[0]} inputs of a linear "
            f"layer: use group_size {fits[0] if fits else 32}"
        )


def int4_compute_dtype(model: Any) -> str:
    """On a CPU, cast a float32 model to bfloat16 before int4: torchao's CPU int4 kernel
    (``_weight_int4pack_mm_for_cpu``) took 0.5 s for a 128 x 576 x 1536 product with float32
    activations here, 6.5 ms with bfloat16. Returns what was done, for the step's report."""
    import torch

    parameter = next(model.parameters())
    if parameter.device.type != "cpu" or parameter.dtype != torch.float32:
        return ""
    model.to(torch.bfloat16)
    return "; model cast to bfloat16 first (the CPU int4 kernel computes in bfloat16)"


@register_method(Int4WeightOnly)
def apply_int4_weight_only(model: Any, config: Int4WeightOnly, context: Any) -> str:
    device = next(model.parameters()).device
    check_group_size(model, config.group_size, "int4_weight_only")
    cast = int4_compute_dtype(model)
    count = _torchao_quantize(model, weight_only_config("int4", config.group_size, device))
    return f"{count} linear layers to int4 weights (group size {config.group_size}){cast}"


#: CUDA compute capability of the first GPUs with FP8 tensor cores (Ada Lovelace).
FP8_CAPABILITY = (8, 9)


@register_method(Float8Dynamic)
def apply_float8_dynamic(model: Any, config: Float8Dynamic, context: Any) -> str:
    import torch

    device = next(model.parameters()).device
    if device.type != "cuda":
        raise MethodUnavailableError(
            f"float8_dynamic needs a CUDA GPU with FP8 kernels; the model is on {device.type}: "
            "use int8_dynamic on a CPU"
        )
    capability = torch.cuda.get_device_capability(device)
    if capability < FP8_CAPABILITY:
        raise MethodUnavailableError(
            f"float8_dynamic needs compute capability 8.9+ (Ada, Hopper); this GPU has "
            f"{capability[0]}.{capability[1]}: use int8_dynamic or int4_weight_only"
        )
    from torchao.quantization import Float8DynamicActivationFloat8WeightConfig, PerRow, PerTensor

    granularity = PerRow() if config.granularity == "per_row" else PerTensor()
    count = _torchao_quantize(
        model, Float8DynamicActivationFloat8WeightConfig(granularity=granularity)
    )
    return f"{count} linear layers to float8 weights with dynamic float8 activations"


def _bitsandbytes() -> Any:
    try:
        import bitsandbytes
    except ImportError:
        raise MethodUnavailableError(
            "bitsandbytes is not installed: pip install 'agentic-compression[bnb]'"
        ) from None
    return bitsandbytes


def _replace_linears(model: Any, build: Any) -> int:
    replaced = 0
    for name, linear in list(linear_layers(model)):
        parent_name, _, child_name = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child_name, build(linear))
        replaced += 1
    return replaced


@register_method(Bnb4Bit)
def apply_bnb_4bit(model: Any, config: Bnb4Bit, context: Any) -> str:
    import torch

    bnb = _bitsandbytes()
    compute_dtype = getattr(torch, config.compute_dtype)

    def build(linear: Any) -> Any:
        device = linear.weight.device
        layer = bnb.nn.Linear4bit(
            linear.in_features,
            linear.out_features,
            bias=linear.bias is not None,
            compute_dtype=compute_dtype,
            compress_statistics=config.double_quant,
            quant_type=config.quant_type,
            device="meta",
        )
        layer.weight = bnb.nn.Params4bit(
            linear.weight.data.to(torch.float32),
            requires_grad=False,
            blocksize=config.blocksize,
            compress_statistics=config.double_quant,
            quant_type=config.quant_type,
        )
        if linear.bias is not None:
            layer.bias = torch.nn.Parameter(linear.bias.data.to(compute_dtype), requires_grad=False)
        return layer.to(device)  # moving to a device is what quantizes Params4bit

    count = _replace_linears(model, build)
    return f"{count} linear layers to bitsandbytes {config.quant_type} (block {config.blocksize})"


@register_method(Bnb8Bit)
def apply_bnb_8bit(model: Any, config: Bnb8Bit, context: Any) -> str:
    import torch

    bnb = _bitsandbytes()

    def build(linear: Any) -> Any:
        device = linear.weight.device
        layer = bnb.nn.Linear8bitLt(
            linear.in_features,
            linear.out_features,
            bias=linear.bias is not None,
            has_fp16_weights=False,
            threshold=config.threshold,
            device="meta",
        )
        layer.weight = bnb.nn.Int8Params(
            linear.weight.data.clone(), requires_grad=False, has_fp16_weights=False
        )
        if linear.bias is not None:
            layer.bias = torch.nn.Parameter(linear.bias.data, requires_grad=False)
        return layer.to(device)

    count = _replace_linears(model, build)
    return f"{count} linear layers to bitsandbytes int8 (threshold {config.threshold})"
