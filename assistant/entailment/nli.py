"""An NLI / fact-checking cross-encoder as the entailment backend (`nli:HUB_ID_OR_PATH`).

Loaded through sentence-transformers `CrossEncoder`, the same path for a hub id ("cross-encoder/nli-deberta-v3-xsmall",
"MoritzLaurer/DeBERTa-v3-base-mnli-fever-anli") and a local folder. Models order their labels differently
(cross-encoder/* puts contradiction first, MoritzLaurer/* entailment first), so the output index of each score is
read from the model config's `id2label` names, never assumed.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from assistant.entailment.base import Entailment

Slot = Literal["entail", "neutral", "contradict"]

# label names (lower case, non-letters as "_") → which score they feed; 2-label models put "not entailed" in neutral
_LABELS: dict[str, Slot] = {
    **dict.fromkeys(("entailment", "entail", "entails", "entailed", "supported", "supports", "support"), "entail"),
    **dict.fromkeys(("neutral", "not_entailment", "non_entailment", "not_entailed", "no_entailment",
                     "not_supported", "unsupported", "not_enough_info", "nei"), "neutral"),
    **dict.fromkeys(("contradiction", "contradict", "contradicts", "contradicted", "refuted", "refutes"),
                    "contradict"),
}


def label_slots(id2label: Mapping[Any, str]) -> list[Slot]:
    """The score each output index feeds, from the config's label names. Raises ValueError when a name is not
    an NLI label (e.g. "LABEL_0") or no label means entailment: guessing would silently swap verdicts."""
    names = {int(i): str(name) for i, name in id2label.items()}
    slots = [_LABELS.get(re.sub(r"[^a-z]+", "_", names.get(i, "").lower()).strip("_")) for i in range(len(names))]
    if len(names) < 2 or None in slots or "entail" not in slots:
        found = ", ".join(f"{i}={names[i]!r}" for i in sorted(names))
        raise ValueError(f"cannot tell which output is entailment from the model's id2label ({found}); expected "
                         "names like entailment/neutral/contradiction or entailment/not_entailment")
    return [s for s in slots if s is not None]


def from_logits(logits: Sequence[float], slots: Sequence[Slot] | None) -> Entailment:
    """Softmax over the labels (summed per score), or a sigmoid for a single-logit model (`slots` None)."""
    if slots is None:
        entail = 1.0 / (1.0 + math.exp(-float(logits[0])))
        scores = {"entail": entail, "neutral": 1.0 - entail, "contradict": 0.0}
    else:
        top = max(logits)
        exps = [math.exp(float(x) - top) for x in logits]
        total = sum(exps)
        scores = {"entail": 0.0, "neutral": 0.0, "contradict": 0.0}
        for slot, e in zip(slots, exps, strict=True):
            scores[slot] += e / total
    return Entailment(scores["entail"], scores["neutral"], scores["contradict"],
                      reason=f"nli: entail {scores['entail']:.2f}, contradict {scores['contradict']:.2f}")


class NLICrossEncoder:
    """Scores (premise, hypothesis) pairs with an NLI cross-encoder; the model loads on the first `score`."""

    def __init__(self, model: str, *, device: str = "cpu", batch_size: int = 16, max_length: int = 512) -> None:
        self.model = model
        self.name = f"nli:{model}"
        self.device = device
        self.batch_size = batch_size
        self.max_length = max_length
        self._encoder: Any = None
        self._slots: list[Slot] | None = None
        self._lock = threading.Lock()  # two first calls at once load the model once

    @property
    def encoder(self) -> Any:
        with self._lock:
            if self._encoder is None:
                self._encoder, self._slots = self._load()
            return self._encoder

    def _load(self) -> tuple[Any, list[Slot] | None]:
        """The CrossEncoder and its label slots (None for a single-logit model), checked before first use."""
        from sentence_transformers import CrossEncoder

        encoder = CrossEncoder(self.model, device=self.device, max_length=self.max_length)
        config = getattr(encoder, "config", None) or encoder.model.config
        if int(getattr(config, "num_labels", 0) or len(config.id2label)) == 1:
            return encoder, None
        return encoder, label_slots(config.id2label)

    def score(self, pairs: Sequence[tuple[str, str]]) -> list[Entailment]:
        if not pairs:
            return []
        import torch

        encoder = self.encoder
        # raw logits: the softmax (or sigmoid) and the label mapping are ours, whatever activation the model saved
        logits = encoder.predict([(p, h) for p, h in pairs], batch_size=self.batch_size, show_progress_bar=False,
                                 activation_fn=torch.nn.Identity(), convert_to_numpy=True)
        rows = logits.reshape(len(pairs), -1).tolist()
        return [from_logits(row, self._slots) for row in rows]


__all__ = ["NLICrossEncoder", "from_logits", "label_slots"]
