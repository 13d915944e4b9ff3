"""Precision casts: the whole model to float32, bfloat16 or float16."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from agentic_compression.compression.registry import MethodConfig, SearchChoice, register_method


class Cast(MethodConfig):
    """Cast every floating-point parameter and buffer to ``dtype``."""

    method: ClassVar[str] = "cast"
    family: ClassVar[str] = "precision"
    summary: ClassVar[str] = "cast all weights to float32, bfloat16 or float16"
    # "fp32" casts explicitly so that a 32-bit run is 32-bit whatever the model was loaded in.
    search_choices: ClassVar[tuple[SearchChoice, ...]] = (
        SearchChoice("fp32", "fp32", {"dtype": "float32"}, bits=32),
        SearchChoice("bf16", "bf16", {"dtype": "bfloat16"}, bits=16),
        SearchChoice("fp16", "fp16", {"dtype": "float16"}, bits=16, searched=False),
    )

    dtype: Literal["float32", "bfloat16", "float16"] = "bfloat16"


@register_method(Cast)
def apply_cast(model: Any, config: Cast, context: Any) -> str:
    import torch

    model.to(getattr(torch, config.dtype))
    dtypes = sorted({str(p.dtype).removeprefix("torch.") for p in model.parameters()})
    return f"parameters now {', '.join(dtypes)}"
