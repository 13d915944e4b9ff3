"""llama.cpp in-process: its C API over the library that the ``xllamacpp`` wheel ships.

Why these two packages (measured on this project's CPU machines, see docs/RUNTIMES.md):

* ``xllamacpp`` ships a prebuilt llama.cpp (AVX2/FMA/F16C, glibc 2.17) that installs in seconds and
  exports llama.cpp's whole C API, but its Python API (an HTTP-style server) returns log-probabilities
  of generated tokens only, not of a given continuation.
* ``llama-cpp-py-sync`` carries CFFI declarations generated from ``llama.h`` of the neighbouring
  llama.cpp build (b11548 vs the library's b11549); its own prebuilt library needs glibc 2.38, which
  Debian 12 lacks. Its declarations over xllamacpp's library give every position's logits
  (``llama_batch.logits``), which lm-eval's log-likelihoods and perplexity need.
* ``llama-cpp-python`` (logits_all) is an sdist only: a 4-5 minute native build on every new machine.

:class:`LlamaCppModel` holds one model and one context and offers what measurement needs:
tokenization, log-probabilities of every next token of a sequence (with the KV cache reused for a
shared prefix), greedy generation with per-step timings. The ggml quantization functions used by the
GGUF exporter are declared here too (:func:`quantize_rows`).
"""

from __future__ import annotations

import collections
import ctypes
import functools
import importlib.util
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentic_compression.errors import MethodUnavailableError

INSTALL_HINT = "pip install 'agentic-compression[llamacpp]' (xllamacpp and llama-cpp-py-sync)"


def library_path() -> Path:
    """The llama.cpp shared library inside the xllamacpp wheel."""
    spec = importlib.util.find_spec("xllamacpp")
    if spec is None or not spec.submodule_search_locations:
        raise MethodUnavailableError(f"the llamacpp runtime needs xllamacpp: {INSTALL_HINT}")
    folder = Path(next(iter(spec.submodule_search_locations)))
    found = sorted(folder.glob("xllamacpp*.so"))
    if not found:
        raise MethodUnavailableError(f"xllamacpp in {folder} has no shared library; reinstall it")
    return found[0]


def is_installed() -> bool:
    return (
        importlib.util.find_spec("xllamacpp") is not None
        and importlib.util.find_spec("llama_cpp_py_sync") is not None
    )


@functools.lru_cache(maxsize=1)
def api() -> tuple[Any, Any]:
    """(ffi, lib): CFFI declarations from llama-cpp-py-sync over xllamacpp's library (loaded once)."""
    if importlib.util.find_spec("llama_cpp_py_sync") is None:
        raise MethodUnavailableError(
            f"the llamacpp runtime needs llama-cpp-py-sync: {INSTALL_HINT}"
        )
    # Importing the bindings module only declares the API; its own library is never loaded.
    from llama_cpp_py_sync._cffi_bindings import ffi

    lib = ffi.dlopen(str(library_path()))
    _silence(ffi, lib)
    lib.llama_backend_init()
    return ffi, lib


_LOG_CALLBACK: Any = None  # kept alive for the process: llama.cpp calls it from C
#: llama.cpp's last log lines (its loader prints hundreds per model): quoted in errors, not printed.
RECENT_LOG: collections.deque[str] = collections.deque(maxlen=40)


def _silence(ffi: Any, lib: Any) -> None:
    """Keep llama.cpp's log lines in :data:`RECENT_LOG` instead of the terminal."""
    global _LOG_CALLBACK

    @ffi.callback("void(enum ggml_log_level, const char *, void *)")
    def keep(level: int, text: Any, data: Any) -> None:
        RECENT_LOG.append(ffi.string(text).decode("utf-8", errors="replace").rstrip())

    _LOG_CALLBACK = keep
    lib.llama_log_set(keep, ffi.NULL)


def _last_errors() -> str:
    lines = [line for line in RECENT_LOG if "error" in line.lower() or "failed" in line.lower()]
    if not lines:  # llama.cpp does not always say "error": its last non-empty line says why
        lines = [line for line in RECENT_LOG if line.strip(" .")][-1:]
    return "; ".join(lines[-3:]) or "no error logged"


def build_info() -> str:
    """llama.cpp's system line (SIMD features in use) and the xllamacpp version."""
    from importlib.metadata import version

    ffi, lib = api()
    return f"xllamacpp {version('xllamacpp')}; {ffi.string(lib.llama_print_system_info()).decode()}"


# ---------------------------------------------------------------------------------- quantization


@functools.lru_cache(maxsize=1)
def _ggml() -> ctypes.CDLL:
    api()  # loads and initialises the library first
    ggml = ctypes.CDLL(str(library_path()))
    ggml.ggml_quantize_chunk.restype = ctypes.c_size_t
    ggml.ggml_quantize_chunk.argtypes = [
        ctypes.c_int,
        ctypes.c_void_p,
        ctypes.c_void_p,
        ctypes.c_int64,
        ctypes.c_int64,
        ctypes.c_int64,
        ctypes.c_void_p,
    ]
    ggml.ggml_row_size.restype = ctypes.c_size_t
    ggml.ggml_row_size.argtypes = [ctypes.c_int, ctypes.c_int64]
    ggml.ggml_quantize_init.argtypes = [ctypes.c_int]
    ggml.ggml_quantize_requires_imatrix.restype = ctypes.c_bool
    ggml.ggml_quantize_requires_imatrix.argtypes = [ctypes.c_int]
    ggml.gguf_init_from_file.restype = ctypes.c_void_p
    ggml.gguf_init_from_file.argtypes = [ctypes.c_char_p, _GGUFInitParams]
    ggml.gguf_get_n_tensors.restype = ctypes.c_int64
    ggml.gguf_get_n_tensors.argtypes = [ctypes.c_void_p]
    ggml.gguf_get_tensor_name.restype = ctypes.c_char_p
    ggml.gguf_get_tensor_name.argtypes = [ctypes.c_void_p, ctypes.c_int64]
    ggml.gguf_get_tensor_type.restype = ctypes.c_int
    ggml.gguf_get_tensor_type.argtypes = [ctypes.c_void_p, ctypes.c_int64]
    ggml.ggml_type_name.restype = ctypes.c_char_p
    ggml.ggml_type_name.argtypes = [ctypes.c_int]
    ggml.gguf_free.argtypes = [ctypes.c_void_p]
    return ggml


class _GGUFInitParams(ctypes.Structure):
    _fields_ = [("no_alloc", ctypes.c_bool), ("ctx", ctypes.c_void_p)]


def read_tensor_types(path: Path) -> dict[str, str]:
    """Tensor name -> ggml type name, as llama.cpp's own GGUF reader sees the file."""
    ggml = _ggml()
    handle = ggml.gguf_init_from_file(str(path).encode(), _GGUFInitParams(True, None))
    if not handle:
        raise RuntimeError(f"llama.cpp cannot read {path} as GGUF: {_last_errors()}")
    try:
        return {
            ggml.gguf_get_tensor_name(handle, i).decode(): ggml.ggml_type_name(
                ggml.gguf_get_tensor_type(handle, i)
            )
            .decode()
            .upper()
            for i in range(ggml.gguf_get_n_tensors(handle))
        }
    finally:
        ggml.gguf_free(handle)


def quantize_rows(rows: Any, ggml_type: int, importance: Any | None = None) -> Any:
    """Quantize a float32 matrix (numpy, rows x n_per_row) with llama.cpp's own ggml kernels.

    ``importance`` (one float per column) weights the rounding error, as llama-quantize does
    with an importance matrix. Returns the packed bytes as a uint8 numpy array.
    """
    import numpy as np

    ggml = _ggml()
    source = np.ascontiguousarray(rows, dtype=np.float32)
    n_rows, n_per_row = source.shape
    ggml.ggml_quantize_init(ggml_type)
    out = np.empty(ggml.ggml_row_size(ggml_type, n_per_row) * n_rows, dtype=np.uint8)
    weights = None
    if importance is not None:
        weights = np.ascontiguousarray(importance, dtype=np.float32)
        if weights.shape != (n_per_row,):
            raise ValueError(f"importance has shape {weights.shape}, expected ({n_per_row},)")
    written = ggml.ggml_quantize_chunk(
        ggml_type,
        source.ctypes.data,
        out.ctypes.data,
        0,
        n_rows,
        n_per_row,
        None if weights is None else weights.ctypes.data,
    )
    if written != out.nbytes:
        raise RuntimeError(f"ggml_quantize_chunk wrote {written} bytes, expected {out.nbytes}")
    return out


# ---------------------------------------------------------------------------------- inference


@dataclass(frozen=True)
class GenerationTiming:
    """One greedy generation: the prompt's forward pass, then one decode step per new token."""

    prefill_ms: float
    decode_ms: tuple[float, ...]
    tokens: tuple[int, ...]


class LlamaCppModel:
    """One GGUF model with one context (a single sequence), on the CPU.

    ``sink_tokens`` (None: off) lets generation and streamed scoring run past the context in bounded
    memory: when the cache is full, the first ``sink_tokens`` tokens stay (attention sinks,
    StreamingLLM, Xiao et al. 2023), the older half of the rest is dropped, and the positions of what
    is left are shifted down (RoPE re-rotation of the cached keys: llama.cpp's own context shift,
    ``llama-server --context-shift --keep N``). The cache never holds more than ``context`` tokens.

    Example:
        >>> llm = LlamaCppModel(Path("model.gguf"), threads=2, context=2048)  # doctest: +SKIP
        >>> llm.next_token_logprobs(llm.tokenize("The cat"))[0].shape     # doctest: +SKIP
    """

    def __init__(
        self,
        path: Path,
        *,
        threads: int,
        context: int,
        batch: int,
        kv_cache: str = "f16",
        sink_tokens: int | None = None,
    ) -> None:
        ffi, lib = api()
        self._ffi, self._lib = ffi, lib
        self.path = path
        self.threads = threads
        params = lib.llama_model_default_params()
        params.n_gpu_layers = 0
        self._model = lib.llama_model_load_from_file(str(path).encode(), params)
        if self._model == ffi.NULL:
            raise RuntimeError(f"llama.cpp could not load {path}: {_last_errors()}")
        ctx_params = lib.llama_context_default_params()
        ctx_params.n_ctx = context
        ctx_params.n_batch = batch
        ctx_params.n_ubatch = batch
        ctx_params.n_threads = threads
        ctx_params.n_threads_batch = threads
        if kv_cache != "f16":
            # llama.cpp needs flash attention for a quantized V cache.
            ctx_params.type_k = ctx_params.type_v = _GGML_TYPE_IDS[kv_cache]
            ctx_params.flash_attn_type = 1
        self._ctx = lib.llama_init_from_model(self._model, ctx_params)
        if self._ctx == ffi.NULL:
            lib.llama_model_free(self._model)
            self._ctx = None
            raise RuntimeError(f"llama.cpp could not create a context for {path}: {_last_errors()}")
        self._vocab = lib.llama_model_get_vocab(self._model)
        self.n_vocab = int(lib.llama_vocab_n_tokens(self._vocab))
        self.n_ctx = int(lib.llama_n_ctx(self._ctx))
        self.n_batch = batch
        self._batch = lib.llama_batch_init(batch, 0, 1)
        self._cached: list[int] = []  # tokens whose K/V are in the cache, in order
        self.sink_tokens = sink_tokens
        self.shifts = 0  # context shifts done since the cache was last cleared
        if sink_tokens is not None:
            if not 0 <= sink_tokens < self.n_ctx // 2:
                self.close()
                raise ValueError(f"sink_tokens {sink_tokens} must lie in [0, {self.n_ctx // 2})")
            if not lib.llama_memory_can_shift(lib.llama_get_memory(self._ctx)):
                self.close()
                raise RuntimeError(
                    f"llama.cpp cannot shift this context's cache ({kv_cache}): sink_tokens needs it"
                )

    # ------------------------------------------------------------------ vocabulary

    def tokenize(self, text: str, *, add_special: bool = False) -> list[int]:
        data = text.encode("utf-8")
        capacity = len(data) + 8
        buffer = self._ffi.new("llama_token[]", capacity)
        count = self._lib.llama_tokenize(
            self._vocab, data, len(data), buffer, capacity, add_special, False
        )
        if count < 0:
            raise RuntimeError(f"llama_tokenize needs {-count} slots, had {capacity}")
        return [int(buffer[i]) for i in range(count)]

    def detokenize(self, tokens: list[int]) -> str:
        pieces = b""
        buffer = self._ffi.new("char[]", 256)
        for token in tokens:
            length = self._lib.llama_token_to_piece(self._vocab, token, buffer, 256, 0, False)
            pieces += self._ffi.buffer(buffer, max(0, length))[:]
        return pieces.decode("utf-8", errors="replace")

    @property
    def bos(self) -> int:
        return int(self._lib.llama_vocab_bos(self._vocab))

    @property
    def eos(self) -> int:
        return int(self._lib.llama_vocab_eos(self._vocab))

    def is_end_of_generation(self, token: int) -> bool:
        return bool(self._lib.llama_vocab_is_eog(self._vocab, token))

    # ------------------------------------------------------------------ evaluation

    def cache_bytes(self) -> int:
        """Bytes of this sequence's K/V cells as llama.cpp serialises them (in the cache's type):
        what the tokens now in the cache occupy, measured by llama.cpp, not computed here."""
        return int(self._lib.llama_state_seq_get_size(self._ctx, 0))

    @property
    def cached_tokens(self) -> int:
        return len(self._cached)

    def _forget_from(self, position: int) -> None:
        memory = self._lib.llama_get_memory(self._ctx)
        if position == 0:
            self._lib.llama_memory_clear(memory, True)
            self.shifts = 0
        else:
            self._lib.llama_memory_seq_rm(memory, 0, position, -1)
        del self._cached[position:]

    def _make_room(self, needed: int) -> None:
        """Context shift (see the class docstring) until ``needed`` more tokens fit."""
        free = self.n_ctx - len(self._cached)
        if needed <= free:
            return
        if self.sink_tokens is None:
            raise ValueError(
                f"{len(self._cached) + needed} tokens exceed the context of {self.n_ctx} "
                "(set sink_tokens to shift the context instead)"
            )
        keep = self.sink_tokens
        discard = max((len(self._cached) - keep) // 2, needed - free)
        if keep + discard > len(self._cached) or needed > self.n_ctx - keep:
            raise ValueError(
                f"{needed} tokens do not fit beside {keep} sink tokens in {self.n_ctx}"
            )
        memory = self._lib.llama_get_memory(self._ctx)
        self._lib.llama_memory_seq_rm(memory, 0, keep, keep + discard)
        self._lib.llama_memory_seq_add(memory, 0, keep + discard, -1, -discard)
        del self._cached[keep : keep + discard]
        self.shifts += 1

    def stream_logprobs(self, tokens: list[int], *, chunk: int = 64) -> Any:
        """Log-probabilities of ``tokens[1:]`` read in chunks of ``chunk`` tokens from a fresh cache,
        shifting the context when it is full (``sink_tokens``): how well the model predicts a text
        longer than its cache."""
        import numpy as np

        self._forget_from(0)
        scores = []
        for offset in range(0, len(tokens), chunk):
            piece = tokens[offset : offset + chunk]
            self._make_room(len(piece))
            logits = self._decode(piece, len(self._cached), 0)
            targets = np.asarray(tokens[offset + 1 : offset + 1 + len(piece)])
            scores.append(_target_logprobs(logits[: len(targets)], targets))
        return np.concatenate(scores)

    def _decode(self, tokens: list[int], start: int, logits_from: int | None) -> Any:
        """Decode ``tokens`` at positions ``start...``; return the logits of ``tokens[logits_from:]``.

        A (n, n_vocab) float32 array, or None when ``logits_from`` is None. Only the rows asked for
        are computed: the output projection is a large part of a small model's cost.
        """
        import numpy as np

        rows = []
        batch = self._batch
        for offset in range(0, len(tokens), self.n_batch):
            chunk = tokens[offset : offset + self.n_batch]
            batch.n_tokens = len(chunk)
            flagged = 0
            for i, token in enumerate(chunk):
                batch.token[i] = token
                batch.pos[i] = start + offset + i
                batch.n_seq_id[i] = 1
                batch.seq_id[i][0] = 0
                wanted = logits_from is not None and offset + i >= logits_from
                batch.logits[i] = 1 if wanted else 0
                flagged += wanted
            status = self._lib.llama_decode(self._ctx, batch)
            if status != 0:
                raise RuntimeError(f"llama_decode failed with status {status}: {_last_errors()}")
            self._cached.extend(chunk)
            if flagged:
                pointer = self._lib.llama_get_logits(self._ctx)
                size = flagged * self.n_vocab * 4
                # A copy now: llama.cpp overwrites its logits buffer on the next decode call.
                rows.append(np.frombuffer(self._ffi.buffer(pointer, size), dtype=np.float32).copy())
        if logits_from is None:
            return None
        return np.concatenate(rows).reshape(-1, self.n_vocab)

    def next_token_logprobs(self, tokens: list[int], *, score_from: int = 1) -> tuple[Any, Any]:
        """Log-probabilities of ``tokens[score_from:]`` given what precedes each, and whether each
        was the greedy (argmax) choice. K/V of a prefix shared with the previous call are reused.
        """
        import numpy as np

        if not 1 <= score_from <= len(tokens):
            raise ValueError("score_from must lie in [1, len(tokens)]")
        if len(tokens) > self.n_ctx:
            raise ValueError(f"{len(tokens)} tokens exceed the context of {self.n_ctx}")
        shared = 0
        for cached, new in zip(self._cached, tokens, strict=False):
            if cached != new:
                break
            shared += 1
        # The logits of position score_from - 1 are needed: recompute from there at the latest.
        keep = min(shared, score_from - 1)
        self._forget_from(keep)
        logits = self._decode(tokens[keep:], keep, score_from - 1 - keep)
        wanted = logits[:-1]
        targets = np.asarray(tokens[score_from:])
        greedy = wanted.argmax(axis=1) == targets
        return _target_logprobs(wanted, targets), greedy

    def generate(
        self,
        prompt: list[int],
        max_new_tokens: int,
        *,
        stop_at_eog: bool = True,
        should_stop: Callable[[list[int]], bool] | None = None,
    ) -> GenerationTiming:
        """Greedy generation from a fresh cache, timing the prefill and each decode step.

        Stops after ``max_new_tokens``, at an end-of-generation token (``stop_at_eog``), or when
        ``should_stop(generated)`` says so.
        """
        import numpy as np

        self._forget_from(0)
        started = time.perf_counter()
        logits = self._decode(prompt, 0, len(prompt) - 1)
        prefill_ms = (time.perf_counter() - started) * 1000
        generated: list[int] = []
        steps: list[float] = []
        token = int(np.argmax(logits[0]))
        while len(generated) < max_new_tokens:
            generated.append(token)
            if stop_at_eog and self.is_end_of_generation(token):
                break
            if should_stop is not None and should_stop(generated):
                break
            if len(generated) == max_new_tokens:
                break
            if len(self._cached) >= self.n_ctx and self.sink_tokens is None:
                break
            started = time.perf_counter()
            self._make_room(1)
            logits = self._decode([token], len(self._cached), 0)
            steps.append((time.perf_counter() - started) * 1000)
            token = int(np.argmax(logits[0]))
        return GenerationTiming(prefill_ms, tuple(steps), tuple(generated))

    def close(self) -> None:
        if getattr(self, "_ctx", None) is not None:
            self._lib.llama_batch_free(self._batch)
            self._lib.llama_free(self._ctx)
            self._lib.llama_model_free(self._model)
            self._ctx = None

    def __del__(self) -> None:
        self.close()


def _target_logprobs(logits: Any, targets: Any) -> Any:
    """Log-probability of each row's target under the row's softmax (in float64)."""
    import numpy as np

    rows = logits.astype(np.float64)
    peak = rows.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(rows - peak).sum(axis=1)) + peak[:, 0]
    return rows[np.arange(len(targets)), targets] - log_norm


#: ggml type ids of the KV-cache types offered (ggml.h's enum ggml_type).
_GGML_TYPE_IDS = {"f16": 1, "q4_0": 2, "q8_0": 8}
