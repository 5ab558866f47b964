"""The evaluation set of an experiment and the tokenizer check of its ladder.

:func:`load_eval_set` reads the instructions and reference outputs (any pool format, or a
``.jsonl`` of ``instruction`` records with an optional ``output``); :func:`pair_hash` is
the key by which an evaluation sample is told apart from the ladder's samples;
:func:`check_tokenizer` compares the tokenizer the ladder's manifests record with the
model's.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["check_tokenizer", "load_eval_set", "pair_hash"]


def pair_hash(instruction: str, response: str) -> str:
    return hashlib.sha1(f"{instruction.strip()}\x00{response.strip()}".encode()).hexdigest()


def load_eval_set(path: str | os.PathLike[str]) -> tuple[list[str], list[str | None]]:
    """Instructions and reference outputs of an evaluation set: any pool format
    (:func:`tritondiv.sft.data.load_pairs`), or a ``.jsonl`` file whose records hold an
    ``instruction`` and optionally an ``output`` (or ``response``); a missing reference is
    ``None``."""
    from tritondiv.sft.data import load_pairs

    p = Path(path)
    if p.suffix != ".jsonl" or not p.is_file():
        ins, res = load_pairs(p)
        return ins, list(res)
    ins_out: list[str] = []
    refs: list[str | None] = []
    with p.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{p}, line {n}: not JSON ({exc.msg})") from None
            if not isinstance(rec, dict):
                raise ValueError(f"{p}, line {n}: a record must be a JSON object")
            if "instruction" not in rec and "output" not in rec and "response" not in rec:
                ins, res = load_pairs(p)  # another pool format: the pool reader's rules
                return ins, list(res)
            text = rec.get("instruction")
            if not isinstance(text, str) or not text.strip():
                raise ValueError(f"{p}, line {n}: 'instruction' must be a non-empty string")
            if rec.get("input"):
                ins, res = load_pairs(p)  # alpaca records with an input: the pool's rules
                return ins, list(res)
            ref = rec.get("output", rec.get("response"))
            if ref is not None and not isinstance(ref, str):
                raise ValueError(f"{p}, line {n}: 'output' must be a string")
            ins_out.append(text)
            refs.append(ref if ref and ref.strip() else None)
    return ins_out, refs


def _recorded_tokenizers(manifest: dict[str, Any]) -> list[Any]:
    found = []
    opts = manifest.get("options")
    if isinstance(opts, dict) and opts.get("tokenizer") is not None:
        found.append(opts["tokenizer"])
    if manifest.get("tokenizer_identity") is not None:
        found.append(manifest["tokenizer_identity"])
    if isinstance(manifest.get("tokenizer"), dict):
        found.append(manifest["tokenizer"])
    return found


def _same_tokenizer(recorded: Any, model_id: dict[str, Any]) -> bool:
    if isinstance(recorded, dict):
        if recorded.get("sha256"):
            same = recorded["sha256"] == model_id.get("sha256")
            if same and recorded.get("vocab_size") is not None:
                same = int(recorded["vocab_size"]) == int(model_id.get("vocab_size") or -1)
            return bool(same)
        recorded = recorded.get("name")
    if isinstance(recorded, str):
        return recorded in {model_id.get("name"), model_id.get("source"), model_id.get("sha256")}
    return False


def check_tokenizer(
    datasets: Sequence[dict[str, Any]],
    tokenizer: Any,
    *,
    index: dict[str, Any] | None = None,
    allow_mismatch: bool = False,
) -> dict[str, Any]:
    """Compare the tokenizer each dataset manifest (and the ladder index) records --
    ``manifest["options"]["tokenizer"]`` and ``manifest.get("tokenizer_identity")`` -- with
    the model's (:func:`tritondiv.tokens.tokenizer_identity`: sha256 and vocabulary size,
    else the name). Raises ``ValueError`` on a mismatch unless ``allow_mismatch``.

    Returns ``{"model", "status", "mismatched", "allow_tokenizer_mismatch"}``; ``status``
    is ``"match"``, ``"unrecorded"`` (no manifest records one) or ``"mismatch"``."""
    from tritondiv.tokens import tokenizer_identity

    try:
        model_id: dict[str, Any] = tokenizer_identity(tokenizer)
    except TypeError as exc:  # a slow tokenizer: no identity to compare
        model_id = {"name": getattr(tokenizer, "name_or_path", None), "error": str(exc)}
    sources = [("ladder index", index or {})] + [(str(d["path"]), d["manifest"]) for d in datasets]
    recorded = 0
    mismatched: list[dict[str, Any]] = []
    for where, man in sources:
        for rec in _recorded_tokenizers(man):
            recorded += 1
            if not _same_tokenizer(rec, model_id):
                mismatched.append({"where": where, "recorded": rec})
    status = "mismatch" if mismatched else ("match" if recorded else "unrecorded")
    if mismatched and not allow_mismatch:
        first = mismatched[0]
        raise ValueError(
            f"{first['where']} was measured with the tokenizer {first['recorded']!r}, not the "
            f"model's ({model_id.get('name')}, sha256 {str(model_id.get('sha256'))[:12]}..., "
            f"vocab {model_id.get('vocab_size')}); {len(mismatched)} manifest(s) differ. Rebuild "
            "the ladder with the model's tokenizer, or pass --allow-tokenizer-mismatch"
        )
    return {
        "model": model_id,
        "status": status,
        "mismatched": mismatched,
        "allow_tokenizer_mismatch": bool(allow_mismatch),
    }
