"""Shared fixtures: tiny random-weight models built from a config, the embedded tokenizer, real data.

Tiny models use the embedded SmolLM2 tokenizer (converted once into the cache) so that tokenisation is
real while the forward pass costs milliseconds.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: The local PostgreSQL (python-svc machines run it; .ci/run starts it when it is down).
SERVER = "postgresql://postgres@127.0.0.1:5432/test"
SHARED_BENCHMARKS = REPO.parent / "shared" / "benchmarks"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (for servers a test starts)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    if SHARED_BENCHMARKS.is_dir():
        os.environ.setdefault("AGENTIC_COMPRESSION_DATA", str(SHARED_BENCHMARKS))


@pytest.fixture(scope="session")
def benchmarks_dir() -> Path:
    if not SHARED_BENCHMARKS.is_dir():
        pytest.skip("../shared/benchmarks is not beside this checkout")
    return SHARED_BENCHMARKS


@pytest.fixture(scope="session")
def embedded_tokenizer():  # type: ignore[no-untyped-def]
    from transformers import AutoTokenizer

    from agentic_compression.models.loading import embedded_folder

    return AutoTokenizer.from_pretrained(embedded_folder("smollm2-135m"))


def _tiny_llama(vocab_size: int):  # type: ignore[no-untyped-def]
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=True,
    )
    return LlamaForCausalLM(config).eval()


def _tiny_gpt2(vocab_size: int):  # type: ignore[no-untyped-def]
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(vocab_size=vocab_size, n_embd=64, n_layer=2, n_head=4, n_positions=512)
    return GPT2LMHeadModel(config).eval()


@pytest.fixture()
def tiny_llama(embedded_tokenizer):  # type: ignore[no-untyped-def]
    """A fresh 2-layer random Llama (hidden 64) over the real SmolLM2 vocabulary."""
    return _tiny_llama(len(embedded_tokenizer))


@pytest.fixture()
def tiny_gpt2(embedded_tokenizer):  # type: ignore[no-untyped-def]
    """A fresh 2-layer random GPT-2 (Conv1D layers, not nn.Linear) over the SmolLM2 vocabulary."""
    return _tiny_gpt2(len(embedded_tokenizer))


@pytest.fixture(scope="session")
def embedded_model():  # type: ignore[no-untyped-def]
    """The embedded SmolLM2-135M base model, loaded once per test session."""
    from agentic_compression.models import load_model

    return load_model("smollm2-135m")


@pytest.fixture()
def schema_url() -> Iterator[tuple[str, str]]:
    """(URL whose search_path is a fresh schema, schema name); the schema is dropped after."""
    psycopg = pytest.importorskip("psycopg")
    try:
        admin = psycopg.connect(SERVER, connect_timeout=3, autocommit=True)
    except psycopg.OperationalError as error:
        pytest.skip(f"PostgreSQL is not reachable at 127.0.0.1:5432 ({str(error).strip()[:120]})")
    schema = f"ac_test_{secrets.token_hex(4)}"
    admin.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{SERVER}?options=-csearch_path%3D{schema}", schema
    finally:
        admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        admin.close()
