"""Per-layer mixed precision for the torch runtime: torchao int4 / int8 / float per linear layer.

``layers`` maps module-name patterns (``fnmatch``: ``*.mlp.down_proj``, ``model.layers.0.*``; the
first matching pattern wins) to a format. ``budget_bits`` asks for an automatic allocation: the
decoder's other linear layers get formats from ``types`` by their sensitivity measured on the
calibration text (:mod:`.sensitivity`), at most ``budget_bits`` stored bits per weight on average
(scales and zero points included: the bytes are read off the real torchao tensors). Formats:

- ``int4``: torchao int4 weight-only, asymmetric groups of ``group_size`` (tinygemm's packed layout;
  on a CPU torchao's ``Int4OpaqueTensor``, on CUDA its ``Int4WeightOnlyConfig``); ``int4-g32``,
  ``int4-g64``, ``int4-g128`` name the group size per layer (the sizes torchao's CPU int4 kernel
  takes), so an allocation can give sensitive layers small groups (a scale and zero per 32 weights:
  5 bits/weight) and the rest large ones (4.25 bits at 128) when every layer is int4; a layer is
  offered only the group sizes that divide its inputs;
- ``int8``: torchao int8 weight-only, one scale per output channel;
- ``float``: left as it is.

With int4 on a CPU a float32 model is cast to bfloat16 first (torchao's CPU int4 kernel is about 80x
slower with float32 activations); the step's report says so.
"""

from __future__ import annotations

import collections
import fnmatch
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from agentic_compression.compression.calibration import calibration_tokens
from agentic_compression.compression.layers import linear_layers
from agentic_compression.compression.quantization import int4_compute_dtype, weight_only_config
from agentic_compression.compression.registry import MethodConfig, SearchChoice, register_method
from agentic_compression.errors import MethodUnavailableError

Format = Literal["int4", "int4-g32", "int4-g64", "int4-g128", "int8", "float"]


class MixedPrecision(MethodConfig):
    """Each linear layer in its own format: by pattern, or allocated by sensitivity under a budget."""

    method: ClassVar[str] = "mixed_precision"
    family: ClassVar[str] = "quantization"
    quantizes_weights: ClassVar[bool] = True
    runtimes: ClassVar[tuple[str, ...]] = ("torch",)
    summary: ClassVar[str] = (
        "per-layer int4/int8/float (torchao): module patterns and/or a sensitivity allocation "
        "under a bits-per-weight budget"
    )
    # Not in the default search yet: its sensitivity pass costs minutes per candidate on a CPU
    # (one forward pass per matrix), which multi-fidelity screening should decide when to pay.
    search_choices: ClassVar[tuple[SearchChoice, ...]] = (
        SearchChoice("mixed-6bit", "mix6", {"budget_bits": 6.0}, bits=6, searched=False),
    )

    layers: dict[str, Format] = Field(default_factory=dict)
    budget_bits: float | None = Field(None, ge=4.0, le=32.0)
    types: tuple[Format, ...] = ("int4", "int8")
    group_size: Literal[32, 64, 128, 256] = 64
    calibration_samples: int = Field(2, ge=1, le=256)
    calibration_seq_len: int = Field(256, ge=16, le=8192)

    @model_validator(mode="after")
    def _something_to_do(self) -> MixedPrecision:
        if not self.layers and self.budget_bits is None:
            raise ValueError("mixed_precision needs layers (pattern -> format) or budget_bits")
        if self.budget_bits is not None and len(set(self.types)) < 2:
            raise ValueError("mixed_precision types needs at least two formats to allocate")
        return self


def _kind_and_group(form: str, group_size: int) -> tuple[str, int]:
    """``("int4", 32)`` for ``int4-g32``; other formats keep the step's ``group_size``."""
    kind, _, group = form.partition("-g")
    return kind, int(group) if group else group_size


def _fewest_bits_first(forms: set[str], group_size: int) -> list[str]:
    """``forms`` from the fewest stored bits per weight to the most (int4 by falling group size)."""
    rank = {"int4": 0, "int8": 1, "float": 2}

    def key(form: str) -> tuple[int, int]:
        kind, group = _kind_and_group(form, group_size)
        return rank[kind], -group if kind == "int4" else 0

    return sorted(forms, key=key)


def _quantize(model: Any, names: set[str], config: Any) -> None:
    import torch
    from torchao.quantization import quantize_

    def wanted(module: Any, fqn: str) -> bool:
        return isinstance(module, torch.nn.Linear) and fqn in names

    quantize_(model, config, filter_fn=wanted)


def stored_bytes(weight: Any) -> int:
    """Bytes of a (possibly torchao) weight: the sum of its inner tensors for a tensor subclass."""
    flatten = getattr(weight, "__tensor_flatten__", None)
    if flatten is None or type(weight).__name__ == "Parameter":
        return int(weight.numel() * weight.element_size())
    return sum(stored_bytes(getattr(weight, name)) for name in flatten()[0])


def _round_trip(form: str, group_size: int) -> Any:
    """``round_trip`` for :func:`.sensitivity.measure_sensitivity`: the layer quantized by torchao on
    a copy, its effective weight read back by multiplying the identity."""
    import torch

    kind, group = _kind_and_group(form, group_size)

    def run(name: str, weight: Any, _: str) -> tuple[Any, int] | None:
        out_features, in_features = weight.shape
        if kind == "int4" and in_features % group:
            return None  # torchao would leave the layer as it is
        layer = torch.nn.Linear(in_features, out_features, bias=False, device=weight.device)
        layer = layer.to(weight.dtype)
        layer.weight.data.copy_(weight)
        holder = torch.nn.Sequential(layer)
        _quantize(holder, {"0"}, weight_only_config(kind, group, weight.device))
        with torch.inference_mode():
            eye = torch.eye(in_features, dtype=weight.dtype, device=weight.device)
            effective = holder(eye).t().contiguous()
        return effective, stored_bytes(holder[0].weight)

    return run


@register_method(MixedPrecision)
def apply_mixed_precision(model: Any, config: MixedPrecision, context: Any) -> str:
    from agentic_compression.compression.allocation import allocate
    from agentic_compression.compression.sensitivity import measure_sensitivity

    device = next(model.parameters()).device
    cast = ""
    chosen: dict[str, str] = {}
    for name, layer in linear_layers(model):
        for pattern, fixed_format in config.layers.items():
            if fnmatch.fnmatchcase(name, pattern):
                kind, group = _kind_and_group(fixed_format, config.group_size)
                if kind == "int4" and layer.in_features % group:
                    fits = [g for g in (128, 64, 32) if layer.in_features % g == 0]
                    raise MethodUnavailableError(
                        f"mixed_precision {fixed_format} (group size {group}) does not divide the "
                        f"{layer.in_features} inputs of {name}: use int4-g{fits[0] if fits else 32}"
                    )
                chosen[name] = fixed_format
                break
    # An allocation gives each layer only the formats that can store it (int4 group sizes that
    # divide its inputs); measure_sensitivity refuses a layer that none can.
    used_forms = {*chosen.values(), *(config.types if config.budget_bits else ())}
    if any(_kind_and_group(f, config.group_size)[0] == "int4" for f in used_forms):
        cast = int4_compute_dtype(model)
    report = ""
    if config.budget_bits is not None:
        # Formats fixed by a pattern are measured too, for their bytes (no extra forward pass).
        kinds: list[str] = _fewest_bits_first({*config.types, *chosen.values()}, config.group_size)
        trips: dict[str, Any] = {
            k: _round_trip(k, config.group_size) for k in kinds if k != "float"
        }

        def round_trip(name: str, weight: Any, kind: str) -> tuple[Any, int]:
            return trips[kind](name, weight, kind)

        tokens = calibration_tokens(
            model, context, config.calibration_samples, config.calibration_seq_len
        )
        sensitivity = measure_sensitivity(model, tokens, kinds, round_trip)
        total_weights = sum(layer.weight.numel() for _, layer in linear_layers(model))
        fixed = 0
        units = {}
        for weight_name, options in sensitivity.options.items():
            module_name = weight_name.removesuffix(".weight")
            if module_name in chosen:
                fixed += next(o.nbytes for o in options if o.kind == chosen[module_name])
            else:
                units[module_name] = [o for o in options if o.kind in config.types]
        allocation = allocate(units, int(total_weights * config.budget_bits / 8) - fixed)
        chosen.update(allocation)
        used = fixed + sum(
            next(o.nbytes for o in units[name] if o.kind == kind)
            for name, kind in allocation.items()
        )
        top = ", ".join(
            f"{n.removesuffix('.weight')} {kl:.4f}" for n, kl in sensitivity.most_sensitive()
        )
        report = (
            f"; allocated {used * 8 / total_weights:.2f} bits/weight (budget {config.budget_bits:g});"
            f" most sensitive (KL nats/token at {kinds[0]}): {top}"
        )
    by_format: dict[str, set[str]] = collections.defaultdict(set)
    for module_name, form in chosen.items():
        by_format[form].add(module_name)
    for form, names in by_format.items():
        if form != "float":
            kind, group = _kind_and_group(form, config.group_size)
            _quantize(model, names, weight_only_config(kind, group, device))
    counts = ", ".join(f"{form} x{len(names)}" for form, names in sorted(by_format.items()))
    return f"linear layers: {counts}{report}{cast}"
