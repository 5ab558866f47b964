"""SFT data: prompt formatting, response-only labels, padding-aware batching.

A sample becomes ``input_ids`` = prompt tokens + response tokens and ``labels`` = the
same ids on response tokens and ``IGNORE_INDEX`` on prompt tokens, so the loss counts
response tokens only. The prompt is the model's chat template (one user turn, with the
generation prompt) when its tokenizer has one, else a plain format::

    ### Instruction:
    {instruction}

    ### Response:
    {response}<eos>

Prompt and response are tokenized separately (one batched call each) and concatenated,
so the boundary is exact. Batches are *length grouped*: a seeded permutation per epoch,
cut into mega-batches of ``64 x batch_size`` samples, each sorted by length and split
into batches, batch order shuffled -- little padding, still random.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "PLAIN_TEMPLATE",
    "EncodedData",
    "collate",
    "encode_pairs",
    "length_grouped_batches",
    "load_pairs",
    "prompt_texts",
]

IGNORE_INDEX = -100
PLAIN_TEMPLATE = "### Instruction:\n{instruction}\n\n### Response:\n"


def load_pairs(path: str | os.PathLike[str]) -> tuple[list[str], list[str]]:
    """Instruction and response texts of a dataset folder, a ``.jsonl`` file (records of
    any formats, read by :func:`tritondiv.dataset.read_dataset`, which verifies a dataset
    against its manifest) or any other pool file (:func:`tritondiv.pool.load_pool`)."""
    from tritondiv.dataset import is_dataset_source, read_dataset

    if is_dataset_source(path):
        ds = read_dataset(path)
        return ds.instructions, ds.responses
    from tritondiv.pool import load_pool

    pool = load_pool(path)
    return list(pool.instruction), list(pool.response)


def _uses_chat_template(tokenizer: Any, template: str) -> bool:
    if template not in ("auto", "chat", "plain"):
        raise ValueError(f"template must be 'auto', 'chat' or 'plain'; got {template!r}")
    has = bool(getattr(tokenizer, "chat_template", None))
    if template == "chat" and not has:
        raise ValueError(
            "template='chat' but the tokenizer has no chat template; use 'plain' or 'auto'"
        )
    return has and template != "plain"


def prompt_texts(
    tokenizer: Any, instructions: Sequence[str], responses: Sequence[str], template: str = "auto"
) -> tuple[list[str], list[str]]:
    """The prompt and response strings of every sample (see the module docstring).

    With a chat template the response string is what the template appends after the
    generation prompt (the response and the end-of-turn marks)."""
    if len(instructions) != len(responses):
        raise ValueError(f"{len(instructions)} instructions for {len(responses)} responses")
    if not _uses_chat_template(tokenizer, template):
        eos = tokenizer.eos_token or ""
        return [PLAIN_TEMPLATE.format(instruction=i) for i in instructions], [
            r + eos for r in responses
        ]
    prompts, tails = [], []
    for ins, res in zip(instructions, responses, strict=True):
        user = [{"role": "user", "content": ins}]
        p = tokenizer.apply_chat_template(user, tokenize=False, add_generation_prompt=True)
        full = tokenizer.apply_chat_template(
            [*user, {"role": "assistant", "content": res}], tokenize=False
        )
        if not full.startswith(p):
            raise ValueError(
                "the chat template does not render the conversation as prompt + response; "
                "pass template='plain'"
            )
        prompts.append(p)
        tails.append(full[len(p) :])
    return prompts, tails


@dataclass
class EncodedData:
    """Tokenized samples: ``input_ids[i]`` and ``labels[i]`` (int64 arrays), the index of
    each kept sample in the input, and how many samples were dropped because truncation
    left no response token."""

    input_ids: list[np.ndarray]
    labels: list[np.ndarray]
    kept: np.ndarray
    n_dropped: int

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter(
            (len(x) for x in self.input_ids), dtype=np.int64, count=len(self.input_ids)
        )

    @property
    def n_response_tokens(self) -> int:
        return int(sum(int((lab != IGNORE_INDEX).sum()) for lab in self.labels))


def encode_pairs(
    tokenizer: Any,
    instructions: Sequence[str],
    responses: Sequence[str],
    *,
    max_length: int = 512,
    template: str = "auto",
) -> EncodedData:
    """Tokenize samples into ``input_ids`` / response-only ``labels``, truncated to
    ``max_length`` tokens (from the right; samples left with no response token are
    dropped and counted)."""
    if max_length < 2:
        raise ValueError(f"max_length must be >= 2; got {max_length}")
    prompts, tails = prompt_texts(tokenizer, instructions, responses, template)
    p_ids = tokenizer(prompts, add_special_tokens=False)["input_ids"] if prompts else []
    r_ids = tokenizer(tails, add_special_tokens=False)["input_ids"] if tails else []
    bos = tokenizer.bos_token_id
    chat = _uses_chat_template(tokenizer, template)
    ids_out, lab_out, kept = [], [], []
    for i, (p, r) in enumerate(zip(p_ids, r_ids, strict=True)):
        if not chat and bos is not None:
            p = [bos, *p]
        ids = np.asarray([*p, *r], dtype=np.int64)[:max_length]
        lab = ids.copy()
        lab[: min(len(p), len(lab))] = IGNORE_INDEX
        if not (lab != IGNORE_INDEX).any():
            continue
        ids_out.append(ids)
        lab_out.append(lab)
        kept.append(i)
    return EncodedData(ids_out, lab_out, np.asarray(kept, dtype=np.int64), len(p_ids) - len(kept))


def length_grouped_batches(
    lengths: np.ndarray, batch_size: int, *, seed: int, epoch: int, mega: int = 64
) -> list[np.ndarray]:
    """Batches of sample indices for one epoch: seeded, length grouped (see module doc).

    Deterministic in ``(seed, epoch)``; every sample appears exactly once."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size}")
    lengths = np.asarray(lengths, dtype=np.int64)
    rng = np.random.default_rng([seed, epoch])
    perm = rng.permutation(len(lengths))
    batches: list[np.ndarray] = []
    step = batch_size * mega
    for s in range(0, len(perm), step):
        block = perm[s : s + step]
        block = block[np.argsort(-lengths[block], kind="stable")]
        batches.extend(block[i : i + batch_size] for i in range(0, len(block), batch_size))
    order = rng.permutation(len(batches))
    return [batches[i] for i in order]


def collate(data: EncodedData, index: np.ndarray, pad_id: int) -> dict[str, Any]:
    """Right-padded torch batch: ``input_ids``, ``attention_mask``, ``labels``."""
    import torch

    seqs = [data.input_ids[i] for i in index]
    width = max(len(s) for s in seqs)
    ids = np.full((len(seqs), width), pad_id, dtype=np.int64)
    lab = np.full((len(seqs), width), IGNORE_INDEX, dtype=np.int64)
    mask = np.zeros((len(seqs), width), dtype=np.int64)
    for row, i in enumerate(index):
        n = len(data.input_ids[i])
        ids[row, :n] = data.input_ids[i]
        lab[row, :n] = data.labels[i]
        mask[row, :n] = 1
    return {
        "input_ids": torch.from_numpy(ids),
        "attention_mask": torch.from_numpy(mask),
        "labels": torch.from_numpy(lab),
    }
