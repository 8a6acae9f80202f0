"""Vision-language models through transformers, by hub id or local folder (SmolVLM, Qwen2-VL, LLaVA, ...).

The processor's own chat template lays out the turns; retrieved figures and page images go in as PIL images
with one image placeholder each in the last user turn. Generation runs in a worker thread and streams through
`TextIteratorStreamer`; closing the stream sets a stopping criterion so the worker ends promptly.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Any

from assistant.types import Message, Sampling
from ingest.errors import MissingDependency

VLM_INSTALL = "pip install 'citeline[vlm]'  (transformers>=4.45)"
FALLBACK_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }}: {% for c in m['content'] %}{% if c['type'] == 'image' %}<image>"
    "{% else %}{{ c['text'] }}{% endif %}{% endfor %}\n{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}"
)


def _transformers() -> Any:
    try:
        import transformers
    except ImportError as e:
        raise MissingDependency("transformers", VLM_INSTALL) from e
    return transformers


def to_vlm_messages(messages: Sequence[Message], n_images: int) -> list[dict[str, Any]]:
    """Plain chat messages -> the content-part format processors expect; images lead the last user turn."""
    out: list[dict[str, Any]] = []
    last_user = max((i for i, m in enumerate(messages) if m["role"] == "user"), default=-1)
    for i, m in enumerate(messages):
        parts: list[dict[str, Any]] = [{"type": "image"} for _ in range(n_images)] if i == last_user else []
        out.append({"role": m["role"], "content": [*parts, {"type": "text", "text": m["content"]}]})
    return out


class VLMGenerator:
    cites_reliably = True
    supports_images = True

    def __init__(self, model_id: str, *, device: str = "cpu", dtype: str = "auto", max_images: int = 4) -> None:
        self.model_id = model_id
        self.name = f"vlm:{model_id}"
        from assistant.generators.base import Budget

        self.budget = Budget(context_tokens=2000, source_tokens=400, max_sources=6)  # local VLMs: image tokens too
        self.device = device
        self.dtype = dtype
        self.max_images = max_images
        self._model: Any = None
        self._processor: Any = None
        self._lock = threading.Lock()

    def load(self) -> tuple[Any, Any]:
        if self._model is None:
            tf = _transformers()
            self._processor = tf.AutoProcessor.from_pretrained(self.model_id)
            self._model = tf.AutoModelForImageTextToText.from_pretrained(self.model_id,
                                                                         dtype=self.dtype).to(self.device)
            self._model.eval()
        return self._model, self._processor

    def _inputs(self, messages: Sequence[Message], images: Sequence[str]) -> Any:
        from PIL import Image

        model, processor = self.load()
        paths = list(images)[: self.max_images]
        pictures = [Image.open(p).convert("RGB") for p in paths]
        chat = to_vlm_messages(messages, len(pictures))
        template = getattr(processor, "chat_template", None) or FALLBACK_TEMPLATE
        prompt = processor.apply_chat_template(chat, chat_template=template, add_generation_prompt=True,
                                               tokenize=False)
        inputs = processor(text=[prompt], images=pictures or None, return_tensors="pt")
        return inputs.to(model.device)

    def stream(self, messages: Sequence[Message], images: Sequence[str] = (),
               sampling: Sampling | None = None) -> Iterator[str]:
        tf = _transformers()
        s = sampling or Sampling()
        model, processor = self.load()
        inputs = self._inputs(messages, images)
        tokenizer = getattr(processor, "tokenizer", processor)
        streamer = tf.TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=600)
        stop = threading.Event()
        kwargs = dict(**inputs, streamer=streamer, max_new_tokens=s.max_tokens,
                      stopping_criteria=tf.StoppingCriteriaList([_EventStop(stop)]))
        if s.temperature > 0:
            kwargs.update(do_sample=True, temperature=s.temperature, top_p=s.top_p, top_k=s.top_k)
        else:
            kwargs.update(do_sample=False)
        with self._lock:
            if s.seed is not None:
                tf.set_seed(s.seed)
            worker = threading.Thread(target=_generate, args=(model, kwargs, streamer), daemon=True)
            worker.start()
            try:
                for piece in streamer:
                    if piece:
                        yield piece
            finally:
                stop.set()
                worker.join()


def _generate(model: Any, kwargs: dict[str, Any], streamer: Any) -> None:
    import torch

    try:
        with torch.inference_mode():
            model.generate(**kwargs)
    except Exception:
        streamer.end()  # never leave the consumer waiting
        raise


class _EventStop:
    """A StoppingCriteria that ends generation once the consumer closed the stream."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool)
