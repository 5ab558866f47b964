"""Taggers (the meso level's raw features): one interface, three implementations.

* :class:`ColumnTagger` (here) - tags already in the pool (a list-of-strings field).
* :class:`~tritondiv.features.keyphrase.KeyphraseTagger` - the offline default:
  KeyBERT-style keyphrases, i.e. candidate 1-3-word phrases of the text scored by cosine
  similarity against the text's embedding.
* :class:`~tritondiv.features.llm_tagger.LLMTagger` - InsTag-style: a local Hugging Face
  causal LM is prompted to return a JSON list of short tags.

Raw tags then go through :func:`tritondiv.features.tag_normalize.normalize_tags`.
:func:`tag_pool` runs a tagger over one component of a pool and caches the result on disk.
The tagger modules' names are re-exported here (their old home).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from tritondiv._io import cache_dir, write_json_atomic
from tritondiv.features.embed import component_texts, pool_fingerprint
from tritondiv.features.keyphrase import STOPWORDS, KeyphraseTagger, extract_candidates
from tritondiv.features.llm_tagger import LLMTagger, find_packaged_smollm2, parse_tag_list

__all__ = [
    "STOPWORDS",
    "ColumnTagger",
    "KeyphraseTagger",
    "LLMTagger",
    "Tagger",
    "extract_candidates",
    "find_packaged_smollm2",
    "parse_tag_list",
    "tag_pool",
]


@runtime_checkable
class Tagger(Protocol):
    """Anything with a ``name`` and ``tag(texts) -> list[list[str]]`` (one list per text)."""

    name: str

    def tag(self, texts: Sequence[str]) -> list[list[str]]: ...


# --------------------------------------------------------------------------- column


class ColumnTagger:
    """Tags that the pool already carries, in the list-of-strings field ``field``.

    ``None`` in a row means untagged. Use through :func:`tag_pool` (it needs the pool).
    """

    def __init__(self, field: str) -> None:
        if not isinstance(field, str) or not field:
            raise ValueError(f"ColumnTagger needs a field name, got {field!r}")
        self.field = field
        self.name = f"column:{field}"

    def tag(self, texts: Sequence[str]) -> list[list[str]]:
        raise TypeError(
            f"ColumnTagger({self.field!r}) reads tags from the pool, not from texts; "
            "call tag_pool(pool, component, tagger) or tagger.tag_pool(pool)"
        )

    def tag_pool(self, pool: Any, component: str | None = None) -> list[list[str]]:
        """Read and check the column: each row must be a list of strings (or ``None``)."""
        if not hasattr(pool, "column"):
            raise TypeError(
                f"ColumnTagger needs a tritondiv Pool (with .column), got {type(pool).__name__}"
            )
        try:
            values = pool.column(self.field)
        except (KeyError, ValueError) as exc:
            raise ValueError(
                f"cannot read tags from field {self.field!r} of the pool: {exc}; name a "
                "list-of-strings field that every record carries, or use the 'keyphrase' or "
                "'llm' tagger"
            ) from exc
        out: list[list[str]] = []
        for i, v in enumerate(values):
            if v is None:
                out.append([])
                continue
            if isinstance(v, np.ndarray):
                v = v.tolist()
            if (
                isinstance(v, (str, bytes))
                or not isinstance(v, (list, tuple))
                or not all(isinstance(t, str) for t in v)
            ):
                raise ValueError(
                    f"field {self.field!r} of sample {i} is {v!r:.80} ({type(v).__name__}); "
                    "tags must be a list of strings per sample"
                )
            out.append([t for t in v if t.strip()])
        return out

    def cache_key(self) -> None:
        """Column tags are not cached (reading them is cheap)."""
        return None


# --------------------------------------------------------------------------- pool


def _check_tags(tags: Any, n: int, who: str) -> list[list[str]]:
    if not isinstance(tags, list) or len(tags) != n:
        got = len(tags) if isinstance(tags, list) else type(tags).__name__
        raise ValueError(f"tagger {who} returned {got} rows for {n} samples")
    for i, row in enumerate(tags):
        if not isinstance(row, list) or not all(isinstance(t, str) for t in row):
            raise ValueError(
                f"tagger {who} returned {row!r:.80} for sample {i}; expected a list of strings"
            )
    return tags


def tag_pool(pool: Any, component: str, tagger: Any, *, cache: bool = True) -> list[list[str]]:
    """Raw tags of one component of a pool, one list per sample, cached on disk.

    Parameters
    ----------
    pool : Pool or list of str
        The pool (or the component's texts; not with :class:`ColumnTagger`).
    component : {"instruction", "response"}
    tagger : Tagger
        A :class:`ColumnTagger`, :class:`KeyphraseTagger`, :class:`LLMTagger` or any object
        with ``name`` and ``tag(texts)`` (optionally ``tag_pool(pool, component)`` and
        ``cache_key()``).
    cache : bool
        Reuse/store the tags under ``cache_dir()/tags``, keyed by the pool fingerprint, the
        component and the tagger's ``cache_key()`` (taggers without one are not cached).

    Returns
    -------
    list of list of str
    """
    texts = None if isinstance(tagger, ColumnTagger) else component_texts(pool, component)
    if texts is None and component is not None and component not in ("instruction", "response"):
        raise ValueError(f"component must be 'instruction' or 'response', got {component!r}")
    key_fn = getattr(tagger, "cache_key", None)
    ident = key_fn() if callable(key_fn) else None
    path = None
    if cache and ident is not None and texts is not None:
        key = hashlib.sha256(
            json.dumps(
                {"pool": pool_fingerprint(pool, texts), "component": component, "tagger": ident}
            ).encode()
        ).hexdigest()[:32]
        path = cache_dir() / "tags" / f"{component}-{key}.json"
        if path.is_file():
            try:
                with open(path, encoding="utf-8") as fh:
                    tags = json.load(fh)["tags"]
                return _check_tags(tags, len(texts), getattr(tagger, "name", "?"))
            except (OSError, ValueError, KeyError, TypeError):
                pass  # damaged entry: recompute
    if hasattr(tagger, "tag_pool"):
        tags = tagger.tag_pool(pool, component)
    else:
        if not hasattr(tagger, "tag"):
            raise TypeError(f"tagger must have a tag(texts) method, got {type(tagger).__name__}")
        tags = tagger.tag(texts)
    n = len(texts) if texts is not None else len(pool)
    tags = _check_tags([list(r) for r in tags], n, getattr(tagger, "name", "?"))
    if path is not None:
        write_json_atomic(path, {"tagger": ident, "tags": tags})
    return tags
