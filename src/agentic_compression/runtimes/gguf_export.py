"""Export a (compressed) Hugging Face causal LM to a GGUF file that llama.cpp serves.

Architectures: ``llama`` and ``mistral`` (GGUF arch ``llama``, with the q/k rows permuted from the
Hugging Face rotary layout back to llama.cpp's), and ``qwen2`` (GGUF arch ``qwen2``, NeoX rotary, no
permutation, q/k/v biases). Anything else is refused with a one-line :class:`UserInputError`.

Weights are quantized tensor by tensor with llama.cpp's own ggml kernels
(:func:`~agentic_compression.runtimes.llamacpp_lib.quantize_rows`), following llama.cpp's type
choice (``llama-quantize``):

* 1-D tensors (norms, biases) stay F32;
* the output matrix (or the token embedding when the two are tied) gets Q6_K in every quantized
  type but Q8_0 (which keeps Q8_0);
* the ``_M`` mixes (Q4_K_M, Q5_K_M) give Q6_K to ``attn_v`` and ``ffn_down`` in the first and last
  eighth of the layers and every third layer between; the rest gets the base type;
* a type whose block does not divide a row falls back as llama.cpp does (Q4_K -> Q5_0,
  Q5_K -> Q5_1, Q6_K -> Q8_0, IQ4_XS -> IQ4_NL; F16 if even 32 does not divide it). The embedded
  model's hidden size is 576, not a multiple of 256, so most of its K-quant tensors fall back.

A matrix whose every block of 32 already lies on a Q4_0 grid (a float16 scale times integers
-8..7, as a calibrated 4-bit rounding such as ``autoround`` leaves it) is written in Q4_0 exactly as
it is (:func:`exact_q4_0`) instead of being rounded again.

The per-tensor types are read back from the written file (:func:`tensor_types`), never assumed.

``importance`` (an importance matrix: the mean square of each input column of every linear layer,
measured on calibration text by :func:`~agentic_compression.compression.sensitivity.importance_matrix`) weights the rounding error of every type
that accepts one, as ``llama-imatrix`` + ``llama-quantize --imatrix`` do.

Tokenizer: copied verbatim from a source GGUF when the base model came from one (the embedded model
does); otherwise built from the Hugging Face tokenizer (byte-level BPE only).
"""

from __future__ import annotations

import collections
import functools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentic_compression.errors import UserInputError

_ARCHES = {"llama": ("LLAMA", True), "mistral": ("LLAMA", True), "qwen2": ("QWEN2", False)}

#: Requested type -> (base ggml type of the big matrices, whether it is an _M mix).
_BASE_TYPE = {
    "F32": ("F32", False),
    "F16": ("F16", False),
    "BF16": ("BF16", False),
    "Q8_0": ("Q8_0", False),
    "Q6_K": ("Q6_K", False),
    "Q5_K_M": ("Q5_K", True),
    "Q5_1": ("Q5_1", False),
    "Q5_0": ("Q5_0", False),
    "Q4_K_M": ("Q4_K", True),
    "Q4_1": ("Q4_1", False),
    "Q4_0": ("Q4_0", False),
    "IQ4_NL": ("IQ4_NL", False),
    "IQ4_XS": ("IQ4_XS", False),
}
_FALLBACK = {"Q4_K": "Q5_0", "Q5_K": "Q5_1", "Q6_K": "Q8_0", "IQ4_XS": "IQ4_NL"}
_FLOAT_TYPES = ("F32", "F16", "BF16")


@dataclass(frozen=True)
class GGUFArtefact:
    """A written GGUF file and what is really in it."""

    path: Path
    size_bytes: int
    requested_type: str
    #: Tensor name -> ggml type name, as read back from the file.
    tensor_types: Mapping[str, str]
    #: Tensors that got another type than the rule asked for, because a row did not fit its blocks.
    fallbacks: int
    imatrix: bool
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def type_counts(self) -> dict[str, int]:
        return dict(collections.Counter(self.tensor_types.values()).most_common())


def _architecture(model: Any) -> tuple[Any, bool]:
    import gguf

    model_type = getattr(model.config, "model_type", None)
    if model_type not in _ARCHES:
        raise UserInputError(
            f"the GGUF exporter maps llama, mistral and qwen2 models; {model_type!r} "
            f"({type(model).__name__}) is not supported: serve it with runtime torch"
        )
    arch_name, permute = _ARCHES[model_type]
    return getattr(gguf.MODEL_ARCH, arch_name), permute


def _permute_rows(weight: Any, n_head: int) -> Any:
    """Hugging Face rotary layout -> llama.cpp's: interleave the two halves of every head's rows."""
    shape = weight.shape
    return (
        weight.reshape(n_head, 2, shape[0] // n_head // 2, *shape[1:]).swapaxes(1, 2).reshape(shape)
    )


def _use_more_bits(layer: int, n_layers: int) -> bool:
    return layer < n_layers // 8 or layer >= 7 * n_layers // 8 or (layer - n_layers // 8) % 3 == 2


def choose_type(
    gguf_name: str,
    shape: tuple[int, ...],
    requested: str,
    n_layers: int,
    tied_output: bool,
    override: str | None = None,
) -> tuple[str, bool]:
    """llama.cpp's type for one tensor (see the module docstring) and whether it fell back;
    ``override`` (a per-tensor type of a mixed-precision recipe) replaces the rule's choice.

    >>> choose_type("blk.0.attn_v.weight", (192, 576), "Q4_K_M", 30, True)
    ('Q8_0', True)
    >>> choose_type("blk.5.attn_q.weight", (576, 576), "Q4_0", 30, True)
    ('Q4_0', False)
    """
    import gguf

    if len(shape) < 2 or requested == "F32":
        return "F32", False
    base, mix = _BASE_TYPE[requested]
    wanted = base
    is_output = gguf_name == "output.weight" or (tied_output and gguf_name == "token_embd.weight")
    if base not in _FLOAT_TYPES and base != "Q8_0" and is_output:
        wanted = "Q6_K"
    elif mix:
        match = re.match(r"blk\.(\d+)\.(attn_v|ffn_down)\.weight$", gguf_name)
        if match and _use_more_bits(int(match.group(1)), n_layers):
            wanted = "Q6_K"
    if override is not None:
        wanted = override
    chosen = wanted
    n_per_row = shape[-1]
    while n_per_row % gguf.GGML_QUANT_SIZES[getattr(gguf.GGMLQuantizationType, chosen)][0]:
        chosen = _FALLBACK.get(chosen, "F16")
    return chosen, chosen != wanted


def _hf_state(model: Any) -> Iterator[tuple[str, Any]]:
    """Float32 numpy weights by Hugging Face name (tied output dropped), one at a time so that a
    large model is never held twice in float32."""
    import torch

    tied = bool(getattr(model.config, "tie_word_embeddings", False))
    for name, tensor in model.state_dict().items():
        if name.endswith("rotary_emb.inv_freq") or (tied and name == "lm_head.weight"):
            continue
        if not tensor.is_floating_point():
            raise UserInputError(
                f"{name} is stored as {tensor.dtype}: GGUF export needs float weights; "
                "let the llamacpp runtime quantize (runtime quant) instead of a torch quantization step"
            )
        yield name, tensor.detach().to(torch.float32).cpu().numpy()


def export_gguf(
    model: Any,
    tokenizer: Any,
    path: Path,
    requested: str,
    *,
    tokenizer_gguf: Path | None = None,
    importance: Mapping[str, Any] | None = None,
    overrides: Mapping[str, str] | None = None,
    name: str = "agentic-compression export",
) -> GGUFArtefact:
    """Write ``model`` as a GGUF file of type ``requested`` at ``path`` (see the module docstring).

    ``overrides`` maps GGUF tensor names (``blk.3.ffn_down.weight``) to the type they get instead.
    """
    import gguf

    arch, permute = _architecture(model)
    config = model.config
    n_layers = int(config.num_hidden_layers)
    n_head = int(config.num_attention_heads)
    n_head_kv = int(getattr(config, "num_key_value_heads", None) or n_head)
    head_dim = int(getattr(config, "head_dim", None) or config.hidden_size // n_head)
    tied = bool(getattr(config, "tie_word_embeddings", False))
    names = gguf.get_tensor_name_map(arch, n_layers)

    # Tensors spool to a temporary file as they are added (not kept in memory until the end).
    writer = gguf.GGUFWriter(str(path), gguf.MODEL_ARCH_NAMES[arch], use_temp_file=True)
    writer.add_name(name)
    writer.add_context_length(int(getattr(config, "max_position_embeddings", 2048)))
    writer.add_embedding_length(int(config.hidden_size))
    writer.add_block_count(n_layers)
    writer.add_feed_forward_length(int(config.intermediate_size))
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_head_kv)
    writer.add_rope_dimension_count(head_dim)
    if head_dim != config.hidden_size // n_head:
        writer.add_key_length(head_dim)
        writer.add_value_length(head_dim)
    writer.add_rope_freq_base(float(_rope_theta(config)))
    writer.add_layer_norm_rms_eps(float(config.rms_norm_eps))
    writer.add_vocab_size(int(config.vocab_size))
    writer.add_file_type(int(getattr(gguf.LlamaFileType, _file_type_name(requested))))
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    notes = list(_add_tokenizer(writer, tokenizer, model, tokenizer_gguf))

    fallbacks = on_grid = 0
    for hf_name, weights in _hf_state(model):
        gguf_name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if gguf_name is None:
            raise UserInputError(f"the GGUF exporter cannot map tensor {hf_name!r}")
        if permute and hf_name.endswith(("q_proj.weight", "q_proj.bias")):
            weights = _permute_rows(weights, n_head)
        elif permute and hf_name.endswith(("k_proj.weight", "k_proj.bias")):
            weights = _permute_rows(weights, n_head_kv)
        override = (overrides or {}).get(gguf_name)
        chosen, fell_back = choose_type(
            gguf_name, weights.shape, requested, n_layers, tied, override
        )
        fallbacks += fell_back
        if chosen == "F32":
            writer.add_tensor(gguf_name, weights)
            continue
        ggml_type = getattr(gguf.GGMLQuantizationType, chosen)
        column_importance = None if importance is None else importance.get(hf_name)
        packed, exact = _pack(weights, chosen, column_importance)
        on_grid += exact
        # A uint8 array shaped (rows, bytes per row): the writer derives the element shape from it.
        writer.add_tensor(gguf_name, packed.reshape(weights.shape[0], -1), raw_dtype=ggml_type)

    if on_grid:
        notes.append(f"{on_grid} tensors already on the Q4_0 grid written exactly (not re-rounded)")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return GGUFArtefact(
        path=path,
        size_bytes=path.stat().st_size,
        requested_type=requested,
        tensor_types=tensor_types(path),
        fallbacks=fallbacks,
        imatrix=importance is not None,
        notes=tuple(notes),
    )


def _pack(rows: Any, chosen: str, importance: Any | None) -> tuple[Any, bool]:
    """``rows`` in ggml type ``chosen``: written as they are when already on a Q4_0 grid (a
    calibrated rounding such as AutoRound's), else quantized by llama.cpp's kernels."""
    import gguf

    from agentic_compression.runtimes.llamacpp_lib import quantize_rows

    if chosen == "Q4_0":
        exact = exact_q4_0(rows)
        if exact is not None:
            return exact, True
    return quantize_rows(rows, int(getattr(gguf.GGMLQuantizationType, chosen)), importance), False


#: Q4_0 block: 32 weights = a float16 scale d and 32 four-bit integers q (stored q + 8), w = d * q.
_Q4_0_BLOCK = 32


def exact_q4_0(rows: Any) -> Any | None:
    """The Q4_0 bytes of ``rows`` (float32, rows x n) if every block of 32 is exactly ``d * q``
    with ``d`` a float16 and ``q`` integers in -8..7; None otherwise (then llama.cpp's quantizer,
    which derives ``d`` from the block's extreme value, would move values that are on such a grid
    whenever the extreme is not -8 d).

    >>> import numpy as np
    >>> grid = (np.arange(64, dtype=np.float32) % 16 - 8) * np.float32(0.25)
    >>> exact_q4_0(grid.reshape(1, 64)).shape, exact_q4_0(grid.reshape(1, 64) + 0.01)
    ((1, 36), None)
    """
    import numpy as np

    rows = np.asarray(rows, dtype=np.float32)
    if rows.ndim != 2 or rows.shape[1] % _Q4_0_BLOCK:
        return None
    if _grid_scales(rows[:1]) is None:  # cheap refusal of ordinary float weights
        return None
    blocks = rows.reshape(-1, _Q4_0_BLOCK)
    scales = _grid_scales(rows)
    if scales is None:
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(scales[:, None] == 0, 0, blocks / scales[:, None])
    nibbles = (np.rint(q) + 8).astype(np.uint8)
    half = _Q4_0_BLOCK // 2
    packed = nibbles[:, :half] | (nibbles[:, half:] << 4)
    d = scales.astype(np.float16).view(np.uint8).reshape(-1, 2)
    out = np.concatenate([d, packed], axis=1)
    return out.reshape(rows.shape[0], -1)


def _grid_scales(rows: Any) -> Any | None:
    """Per block of 32: the float16 scale that puts it exactly on integers -8..7, or None if a block
    has none. The block's largest magnitude is ``d * q`` for some q in -8..7, so those 15
    candidates (``d`` = extreme / q) are all there is to try."""
    import numpy as np

    blocks = rows.reshape(-1, _Q4_0_BLOCK).astype(np.float64)
    extreme = blocks[np.arange(len(blocks)), np.abs(blocks).argmax(axis=1)]
    scales = np.zeros(len(blocks))
    found = extreme == 0
    for level in (-8, -7, -6, -5, -4, -3, -2, -1, 1, 2, 3, 4, 5, 6, 7):
        todo = ~found
        if not todo.any():
            break
        d = (extreme[todo] / level).astype(np.float16).astype(np.float64)
        q = np.rint(blocks[todo] / d[:, None])
        ok = (
            (d != 0)
            & np.all(q >= -8, axis=1)
            & np.all(q <= 7, axis=1)
            & np.all(d[:, None] * q == blocks[todo], axis=1)
        )
        index = np.flatnonzero(todo)[ok]
        scales[index] = d[ok]
        found[index] = True
    return scales if found.all() else None


def gguf_tensor_names(model: Any) -> dict[str, str]:
    """Hugging Face weight name -> GGUF tensor name, for every tensor the exporter writes."""
    import gguf

    arch, _ = _architecture(model)
    names = gguf.get_tensor_name_map(arch, int(model.config.num_hidden_layers))
    mapped = {}
    for hf_name in model.state_dict():
        gguf_name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if gguf_name is not None:
            mapped[hf_name] = gguf_name
    return mapped


def round_trip(weight: Any, type_name: str, importance: Any | None = None) -> tuple[Any, int]:
    """``weight`` (a float torch matrix) quantized to ``type_name`` by llama.cpp's kernels and read
    back: the values llama.cpp computes with, and the bytes the tensor takes in the file."""
    import gguf
    import torch

    rows = weight.detach().to(torch.float32).cpu().numpy()
    chosen, _ = choose_type("", rows.shape, type_name, 1, False)
    if chosen in _FLOAT_TYPES:
        return weight, rows.shape[0] * rows.shape[1] * (4 if chosen == "F32" else 2)
    ggml_type = getattr(gguf.GGMLQuantizationType, chosen)
    packed, _ = _pack(rows, chosen, importance)
    values = gguf.quants.dequantize(packed.reshape(rows.shape[0], -1), ggml_type)
    return torch.from_numpy(values).to(weight.dtype), int(packed.nbytes)


def _rope_theta(config: Any) -> float:
    theta = getattr(config, "rope_theta", None)
    if theta is None:  # transformers 5 keeps it in rope_parameters
        theta = (getattr(config, "rope_parameters", None) or {}).get("rope_theta", 10000.0)
    return float(theta)


def _file_type_name(requested: str) -> str:
    return "ALL_F32" if requested == "F32" else f"MOSTLY_{requested}"


def tensor_types(path: Path) -> dict[str, str]:
    """Tensor name -> ggml type name, read from the file by llama.cpp's own GGUF reader."""
    from agentic_compression.runtimes.llamacpp_lib import read_tensor_types

    return read_tensor_types(path)


def _add_tokenizer(writer: Any, tokenizer: Any, model: Any, source: Path | None) -> list[str]:
    """Copy the tokenizer from a source GGUF, else build a byte-level BPE one; notes on what was done."""

    if source is not None:
        fields = _tokenizer_fields(source, source.stat().st_mtime_ns)
        for key, value, main_type, sub_type in fields:
            writer.add_key_value(key, value, main_type, sub_type=sub_type)
        return [f"tokenizer: {len(fields)} fields copied from {source.name}"]
    return _bpe_tokenizer(writer, tokenizer, model)


@functools.lru_cache(maxsize=4)
def _tokenizer_fields(source: Path, mtime_ns: int) -> tuple[tuple[str, Any, Any, Any], ...]:
    """The ``tokenizer.*`` fields of a GGUF file (parsed once per file version: it takes seconds)."""
    import gguf

    reader = gguf.GGUFReader(str(source))
    fields = []
    for key, kv in reader.fields.items():
        if key.startswith("tokenizer."):
            main_type = kv.types[0]
            sub_type = kv.types[-1] if main_type == gguf.GGUFValueType.ARRAY else None
            fields.append((key, kv.contents(), main_type, sub_type))
    return tuple(fields)


#: llama.cpp pre-tokenizer names for tokenizers it is known to match (by model type and vocab).
_PRE_TOKENIZERS: dict[tuple[str | None, int | None], str] = {
    ("qwen2", None): "qwen2",
    ("llama", 128256): "llama-bpe",
}


def _bpe_tokenizer(writer: Any, tokenizer: Any, model: Any) -> list[str]:
    import json

    import gguf

    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise UserInputError(
            f"the GGUF exporter needs a fast byte-level BPE tokenizer, {type(tokenizer).__name__} "
            "is not one; export from a .gguf model or serve with runtime torch"
        )
    spec = json.loads(backend.to_str())
    if spec.get("model", {}).get("type") != "BPE":
        raise UserInputError(
            "the GGUF exporter writes byte-level BPE tokenizers only (this one is "
            f"{spec.get('model', {}).get('type')}); export from a .gguf model or use runtime torch"
        )
    vocab = tokenizer.get_vocab()
    size = max(int(model.config.vocab_size), len(vocab))
    by_id = {index: token for token, index in vocab.items()}
    added = {token.content: token.special for token in tokenizer.added_tokens_decoder.values()}
    tokens, types = [], []
    for index in range(size):
        token = by_id.get(index, f"[PAD{index}]")
        tokens.append(token)
        if index not in by_id:
            types.append(gguf.TokenType.UNUSED)
        elif token in added:
            types.append(gguf.TokenType.CONTROL if added[token] else gguf.TokenType.USER_DEFINED)
        else:
            types.append(gguf.TokenType.NORMAL)
    merges = spec["model"].get("merges", [])
    merges = [" ".join(m) if isinstance(m, list) else m for m in merges]
    model_type: str | None = getattr(model.config, "model_type", None)
    pre = _PRE_TOKENIZERS.get((model_type, None)) or _PRE_TOKENIZERS.get((model_type, size))
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre or "default")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    for attribute, add in (
        ("bos_token_id", writer.add_bos_token_id),
        ("eos_token_id", writer.add_eos_token_id),
        ("pad_token_id", writer.add_pad_token_id),
    ):
        value = getattr(tokenizer, attribute, None)
        if value is not None:
            add(int(value))
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, str):
        writer.add_chat_template(template)
    notes = [f"tokenizer: byte-level BPE from the Hugging Face tokenizer ({len(merges)} merges)"]
    if pre is None:
        notes.append(
            "tokenizer: llama.cpp's pre-tokenizer for this model is not known here; 'default' was "
            "written (the tokenizer agreement check of the export says whether it matches)"
        )
    return notes
