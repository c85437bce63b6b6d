"""Tiny chat models for generation tests: a word-level tokenizer with a chat template and
randomly initialised Llama weights, saved as a model folder in well under a second.

Outputs are meaningless but deterministic, which is what batching, template and adapter
tests need: the same prompt must give the same greedy text however it is batched.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} <|end|> "
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
SPECIALS = ["<pad>", "<s>", "</s>", "<unk>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"]
WORDS = tuple(
    " ".join(
        (
            "i am sorry but cannot help with that sure here is how to do it the a an of and",
            "write make build explain what why how who where when is are kill python process",
            "capital france paris two three five twelve answer question please thanks",
        )
    ).split(" ")
)


def word_tokenizer(extra_words: list[str] | None = None) -> PreTrainedTokenizerFast:
    vocab = {token: i for i, token in enumerate(SPECIALS)}
    for word in [*WORDS, *(extra_words or []), ".", ",", "?", "!", "'", ":"]:
        vocab.setdefault(word, len(vocab))
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.normalizer = normalizers.Lowercase()
    core.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()]
    )
    core.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        additional_special_tokens=SPECIALS[4:],
    )
    tokenizer.padding_side = "left"
    return tokenizer


def save_chat_model(
    folder: Path,
    *,
    seed: int = 0,
    chat_template: bool = True,
    layers: int = 2,
    hidden: int = 32,
    heads: int = 4,
) -> Path:
    """A random tiny Llama with its tokenizer in ``folder`` (template optional)."""
    tokenizer = word_tokenizer()
    if chat_template:
        tokenizer.chat_template = CHAT_TEMPLATE
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=max(1, heads // 2),
        max_position_embeddings=256,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder
