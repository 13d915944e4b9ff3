"""Model loading: folders, GGUF paths, errors; pristine copies of the base model."""

from __future__ import annotations

import pytest
import torch

from agentic_compression.errors import UserInputError
from agentic_compression.models import load_model
from agentic_compression.models.loading import tensor_hash


@pytest.fixture()
def tiny_folder(tmp_path, tiny_llama, embedded_tokenizer):  # type: ignore[no-untyped-def]
    tiny_llama.save_pretrained(tmp_path)
    embedded_tokenizer.save_pretrained(tmp_path)
    return tmp_path


def test_folder_loads_in_float32_with_a_content_hash(tiny_folder, tiny_llama) -> None:  # type: ignore[no-untyped-def]
    loaded = load_model(str(tiny_folder))
    assert loaded.source == f"folder:{tiny_folder.resolve()}"
    assert loaded.model_hash == tensor_hash(tiny_llama)
    assert {p.dtype for p in loaded.model.parameters()} == {torch.float32}
    assert loaded.architecture == "LlamaForCausalLM"
    assert not loaded.model.training


def test_fresh_copy_is_independent_of_the_base(tiny_folder) -> None:  # type: ignore[no-untyped-def]
    loaded = load_model(str(tiny_folder))
    copy = loaded.fresh_copy()
    with torch.no_grad():
        next(copy.parameters()).zero_()
    assert tensor_hash(loaded.model) == loaded.model_hash
    assert tensor_hash(copy) != loaded.model_hash


def test_hash_changes_with_any_weight(tiny_llama) -> None:  # type: ignore[no-untyped-def]
    before = tensor_hash(tiny_llama)
    with torch.no_grad():
        tiny_llama.model.layers[1].mlp.down_proj.weight[0, 0] += 1e-3
    assert tensor_hash(tiny_llama) != before


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("./missing-folder", "neither a model folder nor a .gguf file"),
        (
            "/tmp/definitely-missing.gguf",
            r"GGUF file '/tmp/definitely-missing\.gguf' does not exist",
        ),
    ],
)
def test_bad_specs_are_user_errors(spec: str, fragment: str) -> None:
    with pytest.raises(UserInputError, match=fragment):
        load_model(spec)


def test_folder_without_config_is_a_user_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UserInputError, match=r"has no config\.json"):
        load_model(str(tmp_path))


def test_unreachable_hub_id_is_a_user_error(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserInputError, match="cannot load model 'nobody/nothing-here'"):
        load_model("nobody/nothing-here")
