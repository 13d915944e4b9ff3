"""Structured pruning with real removal: MLP channels and whole decoder layers.

Unlike unstructured pruning (zeros stored dense), these methods make the model smaller: the MLP
matrices lose rows and columns, the decoder loses blocks, and the model's config says so
(``intermediate_size``, ``num_hidden_layers``), so ``save_pretrained`` and every exporter (GGUF,
ONNX Runtime GenAI, vLLM) write the smaller model and every runtime runs fewer multiply-adds.

Saliency is measured on calibration text (never evaluation text), one forward pass of the unpruned
model:

- ``mlp_channels``: channel ``j`` of a gated MLP (``down_proj(act(gate_proj(x)) * up_proj(x))``) scores
  ``||a_j||_2 * ||W_down[:, j]||_2``, the norm of its input to ``down_proj`` over the calibration
  tokens times the norm of what it writes back (the structured form of Wanda's criterion, as in
  FLAP and LLM-Pruner). Every layer keeps the same number of channels, its best ones, rounded down
  to ``multiple_of`` (the Hugging Face config holds one ``intermediate_size``).
- ``drop_layers``: block ``i`` scores its Block Influence ``1 - cos(h_in, h_out)`` averaged over the
  calibration tokens (ShortGPT, Men et al. 2024); the least influential blocks are removed.

Attention heads are not removed yet (that needs per-layer head counts most runtimes' configs cannot
express, or uniform KV-group removal: a later step). The step report says what was removed.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from agentic_compression.compression.calibration import calibration_tokens
from agentic_compression.compression.layers import decoder_blocks
from agentic_compression.compression.registry import MethodConfig, SearchChoice, register_method
from agentic_compression.errors import MethodUnavailableError

#: Calibration samples are pushed through the model in chunks of this many sequences.
_CHUNK = 8


class _Structured(MethodConfig):
    family: ClassVar[str] = "pruning"

    fraction: float = Field(0.25, gt=0.0, lt=1.0)
    calibration_samples: int = Field(32, ge=1, le=1024)
    calibration_seq_len: int = Field(256, ge=16, le=8192)


class MlpChannels(_Structured):
    """Remove the least salient ``fraction`` of every gated MLP's intermediate channels."""

    method: ClassVar[str] = "mlp_channels"
    summary: ClassVar[str] = "remove MLP channels (calibrated saliency); the matrices shrink"
    search_choices: ClassVar[tuple[SearchChoice, ...]] = (
        SearchChoice(
            "mlp-channels", "mlp", sweep="fraction", sweep_max=0.5, preset_values=(0.25, 0.5)
        ),
    )

    multiple_of: Literal[1, 8, 16, 32, 64, 128, 256] = 32


class DropLayers(_Structured):
    """Remove the ``fraction`` of decoder layers with the lowest Block Influence."""

    method: ClassVar[str] = "drop_layers"
    summary: ClassVar[str] = "remove whole decoder layers (calibrated Block Influence)"
    search_choices: ClassVar[tuple[SearchChoice, ...]] = (
        SearchChoice(
            "drop-layers", "drop", sweep="fraction", sweep_max=0.3, preset_values=(0.1, 0.25)
        ),
    )


def _gated_mlps(model: Any) -> list[Any]:
    blocks = decoder_blocks(model)
    mlps = [getattr(block, "mlp", None) for block in blocks]
    if not all(
        mlp is not None and all(hasattr(mlp, n) for n in ("gate_proj", "up_proj", "down_proj"))
        for mlp in mlps
    ):
        raise MethodUnavailableError(
            f"mlp_channels needs gated MLPs (gate_proj, up_proj, down_proj: Llama, Mistral, Qwen2, "
            f"SmolLM); {type(model).__name__} has other blocks"
        )
    return mlps


def _forward_chunks(model: Any, tokens: Any) -> None:
    for chunk in tokens.split(_CHUNK):
        model(chunk, use_cache=False)


def _keep_rows(layer: Any, keep: Any, dim: int) -> None:
    """Keep only the ``keep`` indices of ``layer``'s weight along ``dim`` (0: outputs, 1: inputs)."""
    import torch

    weight = layer.weight.data.index_select(dim, keep).contiguous()
    layer.weight = torch.nn.Parameter(weight, requires_grad=False)
    if dim == 0:
        layer.out_features = weight.shape[0]
        if layer.bias is not None:
            layer.bias = torch.nn.Parameter(layer.bias.data.index_select(0, keep).contiguous())
    else:
        layer.in_features = weight.shape[1]


@register_method(MlpChannels)
def apply_mlp_channels(model: Any, config: MlpChannels, context: Any) -> str:
    import torch

    mlps = _gated_mlps(model)
    width = int(mlps[0].down_proj.in_features)
    kept = int(width * (1 - config.fraction)) // config.multiple_of * config.multiple_of
    if kept < config.multiple_of or kept >= width:
        raise MethodUnavailableError(
            f"mlp_channels fraction {config.fraction} leaves {kept} of {width} channels at "
            f"multiple_of {config.multiple_of}; choose a fraction that removes some but not all"
        )
    tokens = calibration_tokens(
        model, context, config.calibration_samples, config.calibration_seq_len
    )
    sums = [torch.zeros(width, device=tokens.device) for _ in mlps]

    def accumulate(index: int) -> Any:
        def hook(module: Any, args: tuple[Any, ...]) -> None:
            x = args[0].detach().reshape(-1, module.in_features).float()
            sums[index] += (x * x).sum(dim=0)

        return hook

    handles = [mlp.down_proj.register_forward_pre_hook(accumulate(i)) for i, mlp in enumerate(mlps)]
    try:
        _forward_chunks(model, tokens)
    finally:
        for handle in handles:
            handle.remove()
    for mlp, sq in zip(mlps, sums, strict=True):
        scores = sq.sqrt() * mlp.down_proj.weight.float().norm(dim=0)
        keep = torch.topk(scores, kept).indices.sort().values
        _keep_rows(mlp.gate_proj, keep, 0)
        _keep_rows(mlp.up_proj, keep, 0)
        _keep_rows(mlp.down_proj, keep, 1)
        if hasattr(mlp, "intermediate_size"):
            mlp.intermediate_size = kept
    model.config.intermediate_size = kept
    return (
        f"mlp_channels: {width} -> {kept} channels in {len(mlps)} layers "
        f"({1 - kept / width:.1%} removed); calibration {context.calibration_used[-1]}"
    )


def _parent_attribute(model: Any, child: Any) -> tuple[Any, str]:
    for module in model.modules():
        for name, value in module.named_children():
            if value is child:
                return module, name
    raise ValueError("decoder block list has no parent module")


@register_method(DropLayers)
def apply_drop_layers(model: Any, config: DropLayers, context: Any) -> str:
    import torch

    blocks = decoder_blocks(model)
    count = len(blocks)
    dropped = max(1, round(count * config.fraction))
    if dropped >= count:
        raise MethodUnavailableError(
            f"drop_layers fraction {config.fraction} would remove all {count} layers"
        )
    tokens = calibration_tokens(
        model, context, config.calibration_samples, config.calibration_seq_len
    )
    similarity = [0.0] * count
    seen = [0] * count

    def measure(index: int) -> Any:
        def hook(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
            before = args[0] if args else kwargs["hidden_states"]
            after = out[0] if isinstance(out, tuple) else out
            cos = torch.nn.functional.cosine_similarity(before.float(), after.float(), dim=-1)
            similarity[index] += float(cos.sum())
            seen[index] += cos.numel()

        return hook

    handles = [
        block.register_forward_hook(measure(i), with_kwargs=True) for i, block in enumerate(blocks)
    ]
    try:
        _forward_chunks(model, tokens)
    finally:
        for handle in handles:
            handle.remove()
    influence = [1 - s / max(n, 1) for s, n in zip(similarity, seen, strict=True)]
    removed = sorted(sorted(range(count), key=lambda i: influence[i])[:dropped])
    kept = [i for i in range(count) if i not in removed]
    parent, attribute = _parent_attribute(model, blocks)
    setattr(parent, attribute, torch.nn.ModuleList(blocks[i] for i in kept))
    for new_index, block in enumerate(getattr(parent, attribute)):
        for module in block.modules():
            if hasattr(module, "layer_idx"):
                module.layer_idx = new_index
    model.config.num_hidden_layers = len(kept)
    layer_types = getattr(model.config, "layer_types", None)
    if isinstance(layer_types, list) and len(layer_types) == count:
        model.config.layer_types = [layer_types[i] for i in kept]
    scores = ", ".join(f"{i}:{influence[i]:.3f}" for i in removed)
    return (
        f"drop_layers: removed {dropped} of {count} layers (block influence {scores}); "
        f"calibration {context.calibration_used[-1]}"
    )
