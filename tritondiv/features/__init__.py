"""Featurizers, per component (instruction or response), cached on disk.

* embeddings (macro): :func:`embed_pool`, :func:`embed_texts`, :func:`load_embedder`;
* tags (meso): the taggers :class:`ColumnTagger` (``tags.py``, with the
  :class:`Tagger` protocol and :func:`tag_pool`), :class:`KeyphraseTagger`
  (``keyphrase.py``), :class:`LLMTagger` (``llm_tagger.py``), then :func:`normalize_tags`.

Heavy dependencies (torch, sentence-transformers, transformers) load only when a model is.
"""

from __future__ import annotations

from tritondiv.features.embed import embed_pool, embed_texts, load_embedder
from tritondiv.features.keyphrase import KeyphraseTagger
from tritondiv.features.llm_tagger import LLMTagger
from tritondiv.features.tag_normalize import TagReport, normalize_tags
from tritondiv.features.tags import ColumnTagger, Tagger, tag_pool

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
