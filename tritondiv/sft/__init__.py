"""Supervised fine-tuning on tritondiv datasets.

This sub-package is the only place in tritondiv that imports torch, transformers, trl,
peft, liger-kernel and triton; ``import tritondiv`` never pulls it in. Modules:

- :mod:`tritondiv.sft.loss` -- the chunked, response-only causal-LM cross-entropy
  (plain torch; the full ``tokens x vocab`` logits never exist).
- :mod:`tritondiv.sft.triton_ops` -- Triton kernels (cross-entropy step of the fused
  linear cross-entropy, RMSNorm, SwiGLU) with their autograd Functions.
- :mod:`tritondiv.sft.patch` -- swaps those kernels into transformers Llama-family models
  behind one switch.
- :mod:`tritondiv.sft.data` -- prompt formatting, response-only labels, batching (datasets
  are read through :mod:`tritondiv.dataset`).
- :mod:`tritondiv.sft.trl_train` -- the default trainer: TRL's ``SFTTrainer``
  (completion-only loss, resumable, LoRA through peft, Liger-Kernel on CUDA, the optional
  response gather in front of the fused cross-entropy).
- :mod:`tritondiv.sft.train` -- the configuration, model loading, the held-out loss and
  the project's own seeded, resumable loop (``trainer="own"``).
- :mod:`tritondiv.sft.experiment` -- fine-tune on a whole ladder and score every model
  (it re-exports the names of the next two).
- :mod:`tritondiv.sft.analysis` -- slope regression and Pearson correlations of the scores.
- :mod:`tritondiv.sft.judges` -- the pairwise judge hook, the local LM judge (both
  orders), the length-controlled win rate and an offline example judge.
- :mod:`tritondiv.sft.tiny` -- a tiny random Llama with a locally trained BPE tokenizer
  (smoke runs and tests; nothing downloaded).
"""

from __future__ import annotations

__all__: list[str] = []
