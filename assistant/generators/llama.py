"""Local GGUF models through llama-cpp-python (the offline default).

llama.cpp keeps the KV cache of the previous prompt and reuses its longest common prefix, so a fixed system
prompt at the start of every request is processed once per loaded model, not once per question.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from assistant.types import Message, Sampling
from ingest.errors import MissingDependency

LLAMA_INSTALL = "pip install llama-cpp-python==0.3.36"


class LlamaGenerator:
    supports_images = False
    cites_reliably = False  # small local models: see assistant.prompting.PLAIN_PROMPT

    def __init__(self, model_path: str, *, name: str | None = None, n_ctx: int = 4096, n_threads: int | None = None,
                 n_batch: int = 512) -> None:
        if not os.path.isfile(model_path):
            raise FileNotFoundError(f"GGUF model not found: {model_path}")
        self.model_path = model_path
        self.name = name or f"gguf:{model_path}"
        self.n_ctx = n_ctx
        from assistant.generators.base import SMALL_BUDGET, Budget

        # CPU prompt speed, not the context window, is the limit here; the budget still fits the window
        self.budget = SMALL_BUDGET if n_ctx >= 1024 else Budget(max(64, n_ctx // 4), max(32, n_ctx // 12), 3)
        self.n_threads = n_threads or min(os.cpu_count() or 2, 4)
        self.n_batch = n_batch
        self._llm: Any = None
        self._formatter: Any = None
        self._yes_no: tuple[list[int], list[int]] | None = None
        self._lock = threading.Lock()  # one llama context cannot serve two requests at once

    @property
    def llm(self) -> Any:
        if self._llm is None:
            try:
                from llama_cpp import Llama
            except ImportError as e:
                raise MissingDependency("llama-cpp-python", LLAMA_INSTALL) from e
            # no flash attention: ~5% faster prompts on CPU, but with the KV prefix reused the same seeded
            # request no longer gives the same answer (tests/test_generators.py checks reproducibility)
            self._llm = Llama(model_path=self.model_path, n_ctx=self.n_ctx, n_threads=self.n_threads,
                              n_batch=self.n_batch, verbose=False)
        return self._llm

    def count_tokens(self, text: str) -> int:
        return len(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def yes_no(self, messages: Sequence[Message]) -> float:
        """Log-odds of "Yes" over "No" as the reply's first token: one prompt pass, no sampling. The prompt's
        common prefix with the previous request is reused from the KV cache, and the answer that follows (same
        system prompt and sources) reuses this one's."""
        import numpy as np

        with self._lock:
            llm = self.llm
            tokens = self._prompt_tokens(messages)
            # at least one token is evaluated, so the logits belong to this prompt
            keep = min(llm.longest_token_prefix(llm.input_ids[: llm.n_tokens], tokens), len(tokens) - 1)
            llm.n_tokens = keep
            llm.eval(tokens[keep:])
            logits = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),)).astype(np.float64)
            yes, no = self._yes_no_ids()
            return float(np.logaddexp.reduce(logits[yes]) - np.logaddexp.reduce(logits[no]))

    def _prompt_tokens(self, messages: Sequence[Message]) -> list[int]:
        """The chat prompt exactly as llama-cpp-python's GGUF chat template renders and tokenizes it."""
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        llm = self.llm
        template = llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise NotImplementedError(f"{self.name}: the GGUF has no chat template, so it cannot judge")
        if self._formatter is None:
            text = llm._model.token_get_text
            self._formatter = Jinja2ChatFormatter(
                template=template, eos_token=text(llm.token_eos()) if llm.token_eos() != -1 else "",
                bos_token=text(llm.token_bos()) if llm.token_bos() != -1 else "")
        result = self._formatter(messages=[dict(m) for m in messages])
        return list(llm.tokenize(result.prompt.encode("utf-8"), add_bos=not result.added_special, special=True))

    def _yes_no_ids(self) -> tuple[list[int], list[int]]:
        """The first tokens of the ways the model may begin "Yes" and "No" (computed once per model)."""
        def first(words: Sequence[str]) -> list[int]:
            return sorted({self.llm.tokenize(w.encode(), add_bos=False, special=False)[0] for w in words})

        if self._yes_no is None:
            self._yes_no = first(("Yes", " Yes", "yes", " yes", "YES")), first(("No", " No", "no", " no", "NO"))
        return self._yes_no

    def stream(self, messages: Sequence[Message], images: Sequence[str] = (),
               sampling: Sampling | None = None) -> Iterator[str]:
        s = sampling or Sampling()
        with self._lock:
            chunks = self.llm.create_chat_completion(
                messages=[dict(m) for m in messages], stream=True, temperature=s.temperature, top_p=s.top_p,
                top_k=s.top_k, max_tokens=s.max_tokens, seed=s.seed, stop=list(s.stop) or None,
            )
            try:
                for chunk in chunks:
                    piece = chunk["choices"][0]["delta"].get("content")
                    if piece:
                        yield piece
            finally:
                chunks.close()  # stops llama.cpp when the caller cancels
