"""The transformers vision-language path, with a tiny random-weight LLaVA saved and loaded like a hub model.

No VLM weights exist here, so the test builds one from real config classes, `save_pretrained`s model and
processor to a folder, and loads it through `VLMGenerator` exactly as a hub id would be loaded. LLaVA is used
because its processor is the simplest to construct offline (a CLIP image processor plus any fast tokenizer);
SmolVLM/Idefics3 and Qwen2-VL go through the same AutoProcessor / AutoModelForImageTextToText code.
"""

from __future__ import annotations

import inspect
import threading
from pathlib import Path

import pytest

from assistant.generators import build_generator
from assistant.generators.vlm import VLMGenerator, to_vlm_messages
from assistant.prompting import build_messages
from assistant.types import Sampling, Source

transformers = pytest.importorskip("transformers")
pytest.importorskip("torch")

TEMPLATE = (
    "{% for m in messages %}<s> {{ m['role'] }} : {% for c in m['content'] %}{% if c['type'] == 'image' %}<image> "
    "{% else %}{{ c['text'] }} {% endif %}{% endfor %}</s> {% endfor %}{% if add_generation_prompt %}<s> assistant : "
    "{% endif %}"
)
SPECIALS = ["<unk>", "<pad>", "<s>", "</s>", "<image>"]
CORPUS = ["the battery lasts fourteen hours", "figure shows revenue growth", "user assistant system question",
          "sources answer cite source page document"]


def _tokenizer() -> object:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(CORPUS, trainers.WordLevelTrainer(special_tokens=SPECIALS))
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>",
                                                bos_token="<s>", eos_token="</s>")
    fast.add_special_tokens({"additional_special_tokens": ["<image>"]})
    return fast


@pytest.fixture(scope="module")
def tiny_llava(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    folder = tmp_path_factory.mktemp("tiny-llava")
    tokenizer = _tokenizer()
    image_processor = transformers.CLIPImageProcessor(size={"shortest_edge": 28},
                                                      crop_size={"height": 28, "width": 28})
    processor = transformers.LlavaProcessor(image_processor=image_processor, tokenizer=tokenizer, patch_size=14,
                                            vision_feature_select_strategy="default", chat_template=TEMPLATE,
                                            num_additional_image_tokens=1)
    config = transformers.LlavaConfig(
        vision_config=transformers.CLIPVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                                    num_attention_heads=2, image_size=28, patch_size=14),
        text_config=transformers.LlamaConfig(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32,
                                             num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
                                             max_position_embeddings=512, pad_token_id=tokenizer.pad_token_id,
                                             bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id),
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"), vision_feature_select_strategy="default",
        vision_feature_layer=-1,
    )
    torch.manual_seed(0)
    transformers.LlavaForConditionalGeneration(config).save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def figure(tmp_path_factory: pytest.TempPathFactory) -> str:
    from PIL import Image

    path = tmp_path_factory.mktemp("fig") / "chart.png"
    Image.new("RGB", (40, 30), (200, 30, 30)).save(path)
    return str(path)


MESSAGES = build_messages("what does the figure show", [Source(1, "r.pdf", "d", 2, "figure", "revenue growth")])


def test_messages_become_content_parts_with_images_in_the_last_user_turn():
    parts = to_vlm_messages(MESSAGES, 2)
    assert [p["type"] for p in parts[-1]["content"]] == ["image", "image", "text"]
    assert [p["type"] for p in parts[0]["content"]] == ["text"]


def test_loads_through_from_pretrained_and_feeds_the_image(tiny_llava: Path, figure: str):
    gen = build_generator(f"vlm:{tiny_llava}")
    assert isinstance(gen, VLMGenerator) and gen.supports_images
    inputs = gen._inputs(MESSAGES, [figure])
    assert tuple(inputs["pixel_values"].shape) == (1, 3, 28, 28)
    image_id = gen.load()[1].tokenizer.convert_tokens_to_ids("<image>")
    assert int((inputs["input_ids"] == image_id).sum()) == 4  # (28 / 14)^2 patch features


def test_streams_text_and_honours_sampling(tiny_llava: Path, figure: str):
    gen = VLMGenerator(str(tiny_llava))
    greedy = "".join(gen.stream(MESSAGES, [figure], Sampling(max_tokens=6)))
    assert greedy == "".join(gen.stream(MESSAGES, [figure], Sampling(max_tokens=6)))
    sampled = list(gen.stream(MESSAGES, [figure], Sampling(temperature=1.0, max_tokens=6, seed=1)))
    assert all(isinstance(p, str) for p in sampled)
    text_only = gen._inputs(MESSAGES, [])  # text-only also works: no pixels, no image tokens, a real reply
    assert "pixel_values" not in text_only
    image_id = gen.load()[1].tokenizer.convert_tokens_to_ids("<image>")
    assert int((text_only["input_ids"] == image_id).sum()) == 0
    reply = "".join(gen.stream(MESSAGES, [], Sampling(max_tokens=3)))
    assert reply == "".join(gen.stream(MESSAGES, [], Sampling(max_tokens=3)))  # greedy: reproducible


def test_closing_the_stream_stops_the_worker(tiny_llava: Path, figure: str):
    gen = VLMGenerator(str(tiny_llava))
    stream = gen.stream(MESSAGES, [figure], Sampling(max_tokens=200))
    before = {t for t in threading.enumerate() if t.is_alive()}
    assert next(stream, None) is not None
    workers = [t for t in threading.enumerate() if t.is_alive() and t not in before]
    assert workers, "generation runs in a worker thread while the stream is open"
    stream.close()  # joins the worker: returns only once generation has stopped
    assert not any(t.is_alive() for t in workers)
    assert inspect.getgeneratorstate(stream) == inspect.GEN_CLOSED
    assert gen._lock.acquire(timeout=5), "the generator's lock was not released"  # a next stream can start
    gen._lock.release()
