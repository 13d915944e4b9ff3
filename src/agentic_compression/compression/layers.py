"""Finding the layers that compression acts on, across model families.

GPT-2 in transformers uses ``Conv1D`` (weight stored as (in, out)), not ``nn.Linear``: code that only
looks for ``nn.Linear`` silently does nothing on it. ``conv1d_to_linear`` rewrites those layers as
numerically identical ``nn.Linear`` once, before any method runs, so every method sees one layer type.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

#: Layers left alone by default: the output head (tied to the embeddings in many small models)
#: and the embeddings themselves; this is also what bitsandbytes and torchao users skip.
SKIPPED_LAYER_NAMES = ("lm_head", "embed_out", "wte", "wpe", "embed_tokens")


def conv1d_to_linear(model: Any) -> int:
    """Replace every transformers ``Conv1D`` by an equivalent ``nn.Linear``; return how many."""
    import torch
    from transformers.pytorch_utils import Conv1D

    replaced = 0
    for _, parent in list(model.named_modules()):
        for child_name, child in list(parent.named_children()):
            if isinstance(child, Conv1D):
                in_features, out_features = child.weight.shape
                linear = torch.nn.Linear(
                    in_features, out_features, device=child.weight.device, dtype=child.weight.dtype
                )
                with torch.no_grad():
                    linear.weight.copy_(child.weight.t())
                    linear.bias.copy_(child.bias)
                setattr(parent, child_name, linear)
                replaced += 1
    return replaced


def decoder_blocks(model: Any) -> Any:
    """The ``nn.ModuleList`` of repeated transformer blocks (the longest ModuleList in the model)."""
    import torch

    lists = [m for m in model.modules() if isinstance(m, torch.nn.ModuleList) and len(m) > 0]
    if not lists:
        raise ValueError(f"{type(model).__name__} has no list of decoder blocks")
    return max(lists, key=len)


def is_skipped(name: str) -> bool:
    leaf = name.rsplit(".", 1)[-1]
    return leaf in SKIPPED_LAYER_NAMES


def linear_layers(module: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``(qualified name, nn.Linear)`` for every linear layer under ``module`` that is not skipped."""
    import torch

    for name, child in module.named_modules(prefix=prefix):
        if isinstance(child, torch.nn.Linear) and not is_skipped(name):
            yield name, child
