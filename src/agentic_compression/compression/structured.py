"""Structured pruning with real removal: MLP channels, attention heads and whole decoder layers.

Unlike unstructured pruning (zeros stored dense), these methods make the model smaller: the MLP
matrices lose rows and columns, the decoder loses blocks, and the model's config says so
(``intermediate_size``, ``num_attention_heads``, ``num_hidden_layers``), so ``save_pretrained`` and
every exporter (GGUF,
ONNX Runtime GenAI, vLLM) write the smaller model and every runtime runs fewer multiply-adds.

Saliency is measured on calibration text (never evaluation text), one forward pass of the unpruned
model:

- ``mlp_channels``: channel ``j`` of a gated MLP (``down_proj(act(gate_proj(x)) * up_proj(x))``) scores
  ``||a_j||_2 * ||W_down[:, j]||_2``, the norm of its input to ``down_proj`` over the calibration
  tokens times the norm of what it writes back (the structured form of Wanda's criterion, as in
  FLAP and LLM-Pruner). Every layer keeps the same number of channels, its best ones, rounded down
  to ``multiple_of`` (the Hugging Face config holds one ``intermediate_size``).
- ``attention_heads``: attention is removed a whole KV group at a time (one key/value head and the
  query heads that share it under grouped-query attention, so the grouping stays valid); a group
  scores the sum over its query heads' columns ``j`` of ``o_proj`` of ``||a_j||_2 * ||W_o[:, j]||_2``
  (the same criterion on the attention output). Every layer keeps the same number of groups, its
  best ones (the config holds one head count); ``head_dim`` is written into the config, since it no
  longer equals ``hidden_size / num_attention_heads``.
- ``drop_layers``: block ``i`` scores its Block Influence ``1 - cos(h_in, h_out)`` averaged over the
  calibration tokens (ShortGPT, Men et al. 2024); the least influential blocks are removed.

The step report says what was removed.
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


def _input_square_sums(model: Any, tokens: Any, layers: list[Any]) -> list[Any]:
    """Per layer: the sum over the calibration tokens of the square of each of its input columns."""
    import torch

    sums = [torch.zeros(layer.in_features, device=tokens.device) for layer in layers]

    def accumulate(index: int) -> Any:
        def hook(module: Any, args: tuple[Any, ...]) -> None:
            x = args[0].detach().reshape(-1, module.in_features).float()
            sums[index] += (x * x).sum(dim=0)

        return hook

    handles = [layer.register_forward_pre_hook(accumulate(i)) for i, layer in enumerate(layers)]
    try:
        _forward_chunks(model, tokens)
    finally:
        for handle in handles:
            handle.remove()
    return sums


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
    sums = _input_square_sums(model, tokens, [mlp.down_proj for mlp in mlps])
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


class AttentionHeads(_Structured):
    """Remove the least salient ``fraction`` of every layer's KV groups (with their query heads)."""

    method: ClassVar[str] = "attention_heads"
    summary: ClassVar[str] = (
        "remove attention heads a KV group at a time (calibrated saliency); the matrices shrink"
    )
    search_choices: ClassVar[tuple[SearchChoice, ...]] = (
        SearchChoice(
            "attention-heads", "heads", sweep="fraction", sweep_max=0.4, preset_values=(0.34,),
            searched=False,
        ),
    )  # fmt: skip


def _attentions(model: Any) -> list[Any]:
    attentions = [getattr(block, "self_attn", None) for block in decoder_blocks(model)]
    names = ("q_proj", "k_proj", "v_proj", "o_proj")
    if not all(a is not None and all(hasattr(a, n) for n in names) for a in attentions):
        raise MethodUnavailableError(
            f"attention_heads needs q/k/v/o projections (Llama, Mistral, Qwen2, SmolLM); "
            f"{type(model).__name__} has other blocks"
        )
    return attentions


@register_method(AttentionHeads)
def apply_attention_heads(model: Any, config: AttentionHeads, context: Any) -> str:
    import torch

    attentions = _attentions(model)
    cfg = model.config
    n_heads = int(cfg.num_attention_heads)
    n_groups = int(getattr(cfg, "num_key_value_heads", None) or n_heads)
    head_dim = int(getattr(cfg, "head_dim", None) or cfg.hidden_size // n_heads)
    per_group = n_heads // n_groups
    removed = int(n_groups * config.fraction)
    if removed < 1 or removed >= n_groups:
        raise MethodUnavailableError(
            f"attention_heads fraction {config.fraction} removes {removed} of {n_groups} KV groups; "
            f"choose a fraction between {1 / n_groups:.2f} and {1 - 1 / n_groups:.2f}"
        )
    tokens = calibration_tokens(
        model, context, config.calibration_samples, config.calibration_seq_len
    )
    sums = _input_square_sums(model, tokens, [a.o_proj for a in attentions])
    kept_groups = n_groups - removed
    for attention, sq in zip(attentions, sums, strict=True):
        columns = sq.sqrt() * attention.o_proj.weight.float().norm(dim=0)
        scores = columns.view(n_groups, per_group * head_dim).sum(dim=1)
        groups = torch.topk(scores, kept_groups).indices.sort().values
        kv_rows = (groups[:, None] * head_dim + torch.arange(head_dim)).flatten()
        heads = (groups[:, None] * per_group + torch.arange(per_group)).flatten()
        q_rows = (heads[:, None] * head_dim + torch.arange(head_dim)).flatten()
        _keep_rows(attention.q_proj, q_rows, 0)
        _keep_rows(attention.k_proj, kv_rows, 0)
        _keep_rows(attention.v_proj, kv_rows, 0)
        _keep_rows(attention.o_proj, q_rows, 1)
    cfg.num_attention_heads = kept_groups * per_group
    cfg.num_key_value_heads = kept_groups
    cfg.head_dim = head_dim
    return (
        f"attention_heads: {n_groups} -> {kept_groups} KV groups ({n_heads} -> "
        f"{kept_groups * per_group} query heads) in {len(attentions)} layers; calibration "
        f"{context.calibration_used[-1]}"
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
