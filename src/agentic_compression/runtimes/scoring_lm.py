"""An lm-eval ``LM`` over a runtime's own next-token log-probabilities: accuracy measured in the
runtime that serves (llama.cpp's logits, not dequantised weights in PyTorch).

Any engine that can score a token sequence and generate greedily (:class:`TokenScorer`) plugs in.
Context/continuation pairs are tokenized as lm-eval's Hugging Face backend does (trailing spaces of
the context move to the continuation; the continuation's tokens are those of the whole string past
the context's), so scores are comparable with the torch runtime's ``HFLM``. Requests are scored
sorted by their tokens, so choices that share a context reuse its KV cache.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from lm_eval.api.model import LM


class Generation(Protocol):
    @property
    def tokens(self) -> tuple[int, ...]: ...


class TokenScorer(Protocol):
    """What a runtime must offer for lm-eval (llama.cpp's :class:`LlamaCppModel` is one)."""

    n_ctx: int

    @property
    def bos(self) -> int: ...

    def tokenize(self, text: str, *, add_special: bool = False) -> list[int]: ...

    def detokenize(self, tokens: list[int]) -> str: ...

    def is_end_of_generation(self, token: int) -> bool: ...

    def next_token_logprobs(self, tokens: list[int], *, score_from: int = 1) -> tuple[Any, Any]:
        """Log-probabilities of ``tokens[score_from:]`` and whether each was the argmax."""

    def generate(
        self,
        prompt: list[int],
        max_new_tokens: int,
        *,
        stop_at_eog: bool = True,
        should_stop: Callable[[list[int]], bool] | None = None,
    ) -> Generation: ...


class ScoringLM(LM):
    def __init__(self, llm: TokenScorer, batch_size: int = 1) -> None:
        super().__init__()
        self.llm = llm
        self.batch_size = batch_size

    # ------------------------------------------------------------------ helpers

    def _pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        if not context:
            return [self.llm.bos], self.llm.tokenize(continuation)
        spaces = len(context) - len(context.rstrip())
        if spaces:
            context, continuation = context[:-spaces], context[-spaces:] + continuation
        whole = self.llm.tokenize(context + continuation)
        context_ids = self.llm.tokenize(context)
        return whole[: len(context_ids)], whole[len(context_ids) :]

    def _score(self, context_ids: list[int], continuation_ids: list[int]) -> tuple[float, bool]:
        if not continuation_ids:
            return 0.0, True
        tokens = (context_ids + continuation_ids)[-self.llm.n_ctx :]
        score_from = max(1, len(tokens) - len(continuation_ids))
        logprobs, greedy = self.llm.next_token_logprobs(tokens, score_from=score_from)
        return float(logprobs.sum()), bool(greedy.all())

    # ------------------------------------------------------------------ lm-eval interface

    def loglikelihood(
        self, requests: list[Any], disable_tqdm: bool = False
    ) -> list[tuple[float, bool]]:
        pairs = [self._pair(*request.args) for request in requests]
        order = sorted(range(len(pairs)), key=lambda i: pairs[i][0] + pairs[i][1])
        results: list[tuple[float, bool]] = [(0.0, False)] * len(pairs)
        for index in order:
            results[index] = self._score(*pairs[index])
        return results

    def loglikelihood_rolling(self, requests: list[Any], disable_tqdm: bool = False) -> list[float]:
        from lm_eval.utils import get_rolling_token_windows, make_disjoint_window

        scores = []
        for request in requests:
            tokens = self.llm.tokenize(request.args[0])
            total = 0.0
            windows = get_rolling_token_windows(
                token_list=tokens,
                prefix_token=self.llm.bos,
                max_seq_len=self.llm.n_ctx - 1,
                context_len=1,
            )
            for context_ids, target_ids in map(make_disjoint_window, windows):
                total += self._score(list(context_ids), list(target_ids))[0]
            scores.append(total)
        return scores

    def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
        outputs = []
        for request in requests:
            context, settings = request.args
            until = settings.get("until") or []
            until = [until] if isinstance(until, str) else list(until)
            max_tokens = int(settings.get("max_gen_toks", 256))
            prompt = self.llm.tokenize(context)[-(self.llm.n_ctx - max_tokens) :]

            def reached_stop(tokens: list[int], stops: list[str] = until) -> bool:
                text = self.llm.detokenize(tokens)
                return any(stop and stop in text for stop in stops)

            generated = self.llm.generate(prompt, max_tokens, should_stop=reached_stop).tokens
            text = self.llm.detokenize(
                [t for t in generated if not self.llm.is_end_of_generation(t)]
            )
            for stop in until:
                if stop and stop in text:
                    text = text[: text.index(stop)]
            outputs.append(text)
        return outputs
