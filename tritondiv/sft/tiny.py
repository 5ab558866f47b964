"""A tiny randomly initialized Llama with a locally trained BPE tokenizer, for smoke runs
and tests on a CPU (nothing is downloaded)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

__all__ = ["make_tiny_llama", "synthetic_pairs"]

_NAMES = [
    "apple",
    "river",
    "stone",
    "cloud",
    "tiger",
    "lemon",
    "piano",
    "rocket",
    "garden",
    "silver",
]


def synthetic_pairs(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """``n`` deterministic instruction/response pairs with learnable structure (sums,
    reversals, repetitions) -- a tiny model's loss drops quickly on them."""
    import numpy as np

    rng = np.random.default_rng(seed)
    ins, res = [], []
    for i in range(n):
        a, b = (int(x) for x in rng.integers(0, 50, 2))
        w = [_NAMES[int(j)] for j in rng.integers(0, len(_NAMES), 3)]
        kind = i % 3
        if kind == 0:
            ins.append(f"What is {a} plus {b}?")
            res.append(f"{a} plus {b} is {a + b}.")
        elif kind == 1:
            ins.append(f"Reverse the words: {' '.join(w)}")
            res.append(" ".join(reversed(w)))
        else:
            ins.append(f"Repeat the word {w[0]} twice.")
            res.append(f"{w[0]} {w[0]}")
    return ins, res


def make_tiny_llama(
    out_dir: str | os.PathLike[str],
    texts: Sequence[str],
    *,
    vocab_size: int = 300,
    hidden_size: int = 64,
    layers: int = 2,
    seed: int = 0,
    chat_template: str | None = None,
) -> Path:
    """Train a byte-level BPE tokenizer on ``texts``, build a randomly initialized
    ``LlamaForCausalLM`` (``hidden_size``, ``layers``, 4 heads, 2 KV heads) and
    ``save_pretrained`` both into ``out_dir``. Returns ``out_dir``."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    specials = ["<pad>", "<s>", "</s>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(texts), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>"
    )
    if chat_template is not None:
        fast.chat_template = chat_template
    fast.save_pretrained(out)
    cfg = LlamaConfig(
        vocab_size=fast.vocab_size if hasattr(fast, "vocab_size") else tok.get_vocab_size(),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        pad_token_id=fast.pad_token_id,
        bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(cfg)
    model.save_pretrained(out)
    return out
