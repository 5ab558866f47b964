"""Replay: rebuild a dataset (or every level of a ladder) from what its manifest records,
and check that the data is byte-identical — ``tritondiv replay OUT/manifest.json``.

A manifest records the pool (its source as given, the loader options and the fingerprint),
the strategy, level, size, seed and every feature option (embedding files included), and
the working folder its relative paths were given in (``workdir``). :func:`replay` loads the
pool again with those options, checks its fingerprint first (a changed or missing pool file
is a clear error), selects again into a temporary folder (or ``out``) through the same
:func:`~tritondiv.ladder.select_dataset` / :func:`~tritondiv.ladder.run_ladder` as the
commands, and compares the sha256 of the new data file with the recorded one and with the
file on disk; when they differ it names the first record that differs.

Datasets and manifests are read only through :mod:`tritondiv.dataset`.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["ReplayResult", "replay"]

# manifest pool keys -> load_pool keywords (the CLI's PoolArgs names, then the API's)
_LOADER_KEYS = {
    "format": "format",
    "first_turn_only": "first_turn_only",
    "skip_bad": "skip_bad",
    "allow_empty": "allow_empty",
    "limit": "limit",
    "instruction_field": "instruction",
    "response_field": "response",
    "id_field": "id",
    "instruction": "instruction",
    "response": "response",
    "id": "id",
    "max_text_chars": "max_text_chars",
    "split": "split",
}
# the options that name files (resolved against the manifest's workdir when relative)
_PATH_OPTIONS = ("embeddings_instruction", "embeddings_response", "graph", "embedding_model")


@dataclass(frozen=True)
class ReplayResult:
    """One dataset replayed: where it lies, whether the rebuilt data is byte-identical, and
    (when not) what differs first."""

    path: Path
    identical: bool
    sha256: str
    message: str

    def line(self) -> str:
        return f"{self.path}: {'identical' if self.identical else 'differs'} ({self.message})"


def _locate(value: str, workdir: str | None) -> Path:
    """A recorded path: as given (absolute, or relative to the current folder), else
    relative to the folder the dataset was made in."""
    p = Path(value).expanduser()
    if p.is_absolute() or p.exists() or not workdir:
        return p
    q = Path(workdir) / p
    return q if q.exists() else p


def _load_pool(info: dict[str, Any], workdir: str | None, what: Path) -> Any:
    """The pool the manifest's ``pool`` describes, its fingerprint checked."""
    from tritondiv.pool import load_pool

    if "source" in info:
        source = info["source"]
    elif "path" in info:
        source = info["path"]
    else:
        raise ValueError(
            f"{what}: the manifest records no pool file (the pool was given as an in-memory "
            "object): replay needs a file pool; select from a file to make it replayable"
        )
    kwargs = {_LOADER_KEYS[k]: v for k, v in info.items() if k in _LOADER_KEYS and v is not None}
    if isinstance(kwargs.get("instruction"), list):
        kwargs["instruction"] = tuple(kwargs["instruction"])
    shown = "the embedded default pool" if source is None else str(source)
    if source is not None:
        sources = source if isinstance(source, list) else [source]
        located = [_locate(str(s), workdir) for s in sources]
        gone = [str(s) for s, p in zip(sources, located, strict=True) if not p.exists()]
        if gone:
            where = f" (nor below {workdir}, where the dataset was made)" if workdir else ""
            raise FileNotFoundError(
                f"{what}: the pool file {gone[0]} recorded in the manifest cannot be found"
                f"{where}: run replay where the pool lies, or restore the file"
            )
        source = [str(p) for p in located] if isinstance(source, list) else str(located[0])
    pool = load_pool(source, **kwargs)
    want = info.get("fingerprint")
    from tritondiv.ladder import pool_fingerprint

    got = pool_fingerprint(pool)
    if want != got:
        raise ValueError(
            f"{what}: the pool changed since the dataset was made: {shown} now has fingerprint "
            f"{got[:12]}... ({len(pool)} samples), the manifest records {str(want)[:12]}... "
            f"({info.get('n_samples')} samples); replay needs the pool as it was"
        )
    return pool


def _options(recorded: dict[str, Any], workdir: str | None) -> Any:
    from tritondiv.feature_store import FeatureOptions

    values = dict(recorded)
    for name in _PATH_OPTIONS:
        if isinstance(values.get(name), str):
            values[name] = str(_locate(values[name], workdir))
    tagger = values.get("tagger")
    if isinstance(tagger, str) and tagger.startswith("llm:"):
        values["tagger"] = "llm:" + str(_locate(tagger[4:], workdir))
    tok = values.get("tokenizer")
    if isinstance(tok, str):
        from tritondiv.tokens import TOKENIZER_NAMES

        if tok not in TOKENIZER_NAMES:
            values["tokenizer"] = str(_locate(tok, workdir))
    values["progress"] = False
    return FeatureOptions.from_dict(values)


def _short(record: Any) -> str:
    text = repr(record)
    return text if len(text) <= 160 else text[:157] + "..."


def _first_difference(rebuilt: Path, recorded: Path) -> str:
    """Where the records of two dataset folders first differ, in words."""
    from tritondiv.dataset import read_dataset

    new = read_dataset(rebuilt, verify=False)
    try:
        old = read_dataset(recorded, verify=False)
    except (OSError, ValueError) as exc:
        return f"the recorded data cannot be read back: {' '.join(str(exc).split())}"
    ids_new, ids_old = list(new.pool.ids), list(old.pool.ids)
    for i, (a, b) in enumerate(zip(new.records, old.records, strict=False)):
        if a != b:
            return (
                f"first differing record: {i} (rebuilt id {ids_new[i]!r}, recorded id "
                f"{ids_old[i]!r}): rebuilt {_short(a)}, recorded {_short(b)}"
            )
    if len(new) != len(old):
        return f"the rebuilt data has {len(new)} records, the recorded {len(old)}"
    return "the records are equal but the bytes of the data file differ"


def _compare(folder: Path, rebuilt: Path) -> ReplayResult:
    from tritondiv._io import file_sha256
    from tritondiv.dataset import data_file, read_manifest, verify_dataset

    recorded = read_manifest(folder)
    want = (recorded.get("data") or {}).get("sha256")
    got = (read_manifest(rebuilt).get("data") or {}).get("sha256") or file_sha256(
        data_file(rebuilt)
    )
    ok, why = verify_dataset(folder)
    if ok and got == want:
        return ReplayResult(folder, True, got, f"sha256 {got[:12]}...")
    if not ok and got == want:
        # the selection replays, but the file on disk is not what the manifest records
        message = f"{why}; {_first_difference(rebuilt, folder)}"
    else:
        message = f"sha256 {got[:12]}... rebuilt, {str(want)[:12]}... recorded; " + (
            _first_difference(rebuilt, folder)
        )
    return ReplayResult(folder, False, got, message)


def _is_ladder(target: Path) -> bool:
    from tritondiv.dataset import LADDER_FILE

    return target.name == LADDER_FILE or (target / LADDER_FILE).is_file()


def replay(
    target: str | Path,
    *,
    out: str | Path | None = None,
    log: Callable[[str], None] | None = None,
) -> list[ReplayResult]:
    """Rebuild the dataset of ``target`` from its manifest and compare it byte for byte.

    Parameters
    ----------
    target : path
        A dataset folder or its ``manifest.json``; or a ladder folder or its
        ``ladder.json`` (every level is rebuilt).
    out : path, optional
        Where the rebuilt dataset (or ladder) is written (default: a temporary folder,
        removed afterwards).
    log : callable, optional
        Receives one line per stage.

    Returns
    -------
    list of ReplayResult
        One per dataset, in order.

    Raises
    ------
    FileNotFoundError
        ``target`` or the recorded pool file does not exist.
    ValueError
        The pool's fingerprint differs from the recorded one, or the pool was an in-memory
        object (replay needs a file pool).
    """
    from tritondiv.dataset import LADDER_FILE, MANIFEST_FILE, check_output_dir, read_manifest

    say = log or (lambda _msg: None)
    t = Path(target)
    if not t.exists():
        raise FileNotFoundError(f"{t} does not exist: pass a dataset folder, its manifest.json "
                                "or a ladder folder")  # fmt: skip
    ladder = _is_ladder(t)
    folder = t.parent if t.is_file() else t
    if t.is_file() and t.name not in (MANIFEST_FILE, LADDER_FILE):
        raise ValueError(f"{t}: pass a {MANIFEST_FILE}, a {LADDER_FILE} or their folder")
    if out is not None:
        check_output_dir(out, ladder=ladder)
    tmp = Path(tempfile.mkdtemp(prefix="tritondiv-replay-")) if out is None else None
    dest = Path(out) if out is not None else (tmp or Path()) / "rebuilt"
    try:
        if ladder:
            return _replay_ladder(folder, dest, say)
        man = read_manifest(folder)
        return [_replay_dataset(folder, man, dest, say)]
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def _replay_dataset(
    folder: Path, man: dict[str, Any], dest: Path, say: Callable[[str], None]
) -> ReplayResult:
    from tritondiv.dataset import data_file, output_format_of
    from tritondiv.ladder import select_dataset

    workdir = man.get("workdir")
    say(f"{folder}: loading the pool")
    pool = _load_pool(man.get("pool") or {}, workdir, folder)
    options = _options(man.get("options") or {}, workdir)
    say(f"{folder}: selecting {man['strategy']} level {man['level']:g} size {man['size']}")
    select_dataset(
        pool,
        man["strategy"],
        float(man["level"]),
        int(man["size"]),
        dest,
        options=options,
        seed=int(man.get("seed", 0)),
        pool_info=man.get("pool"),
        metrics=False,
        output_format=output_format_of(man, data_file(folder)),
    )
    return _compare(folder, dest)


def _replay_ladder(folder: Path, dest: Path, say: Callable[[str], None]) -> list[ReplayResult]:
    from tritondiv.dataset import read_ladder
    from tritondiv.ladder import run_ladder

    index, datasets = read_ladder(folder)
    workdir = next((d["manifest"].get("workdir") for d in datasets), None)
    say(f"{folder}: loading the pool")
    pool = _load_pool(index.get("pool") or {}, workdir, folder)
    options = _options(index.get("options") or {}, workdir)
    say(f"{folder}: rebuilding {len(datasets)} datasets")
    run_ladder(
        pool,
        int(index["size"]),
        dest,
        levels=[float(x) for x in index["levels"]],
        strategies=list(index["strategies"]),
        options=options,
        seed=int(index.get("seed", 0)),
        pool_info=index.get("pool"),
        metrics=False,
        report=False,
        output_format=str(index.get("output_format", "jsonl")),
    )
    rel = [d["path"].relative_to(folder) for d in datasets]
    return [_compare(folder / r, dest / r) for r in rel]
