"""Featurizers, per component (instruction or response), cached on disk.

* embeddings (macro): :func:`embed_pool`, :func:`embed_texts`, :func:`load_embedder`;
* tags (meso): the taggers :class:`ColumnTagger`, :class:`KeyphraseTagger`,
  :class:`LLMTagger`, run by :func:`tag_pool`, then :func:`normalize_tags`.

Heavy dependencies (torch, sentence-transformers, transformers) load only when a model is.
"""

from __future__ import annotations

from tritondiv.features.embed import embed_pool, embed_texts, load_embedder
from tritondiv.features.tag_normalize import TagReport, normalize_tags
from tritondiv.features.tags import (
    ColumnTagger,
    KeyphraseTagger,
    LLMTagger,
    Tagger,
    tag_pool,
)

__all__ = [
    "ColumnTagger",
    "KeyphraseTagger",
    "LLMTagger",
    "TagReport",
    "Tagger",
    "embed_pool",
    "embed_texts",
    "load_embedder",
    "normalize_tags",
    "tag_pool",
]
