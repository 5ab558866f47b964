"""The on-disk dataset folder, owned here: a data file (``data.jsonl``: the selected
records) + ``manifest.json``; a ladder folder: ``ladder.json`` + ``<strategy>/level-<i>/``
datasets.

Every other module writes and reads datasets and ladders through this one: the file
names, :func:`write_dataset`, :func:`verify_dataset`, :func:`read_manifest`, and the read
back (:func:`read_dataset`, :func:`read_ladder`, :func:`find_datasets`).

``data.jsonl`` holds the selected samples in selection order, one original pool record
per line (every original field kept; a pool of several files may give several record
formats). ``manifest.json`` is the "finished" marker: it records the pool fingerprint, the
strategy and every option, the seed, the selected ids and pool indices in order,
``k``/``k_min``/``k_max``, coverage, the data file's name, format and sha256, metrics and
versions. :func:`verify_dataset` says whether a directory is finished and intact (the
ladder skips such levels).

Output formats (:data:`OUTPUT_FORMATS`, ``--output-format``), one data file each
(:data:`DATA_FILES`):

``jsonl`` (default)
    ``data.jsonl``, the original records as above.
``parquet``
    ``data.parquet``, the original records as table rows (every field a column; a field
    that a record lacks is null there).
``messages``
    ``data.messages.jsonl``, TRL's conversational format, one record per sample:
    ``{"id": ..., "messages": [{"role": "user", "content": INSTRUCTION}, {"role":
    "assistant", "content": RESPONSE}]}``.
``prompt-completion``
    ``data.prompt_completion.jsonl``, TRL's standard prompt-completion format:
    ``{"id": ..., "prompt": INSTRUCTION, "completion": RESPONSE}``.

INSTRUCTION and RESPONSE are the texts the selection measured (the pool's record rule
applied to the original record); ``id`` is the sample's pool id. Read back, the last two
go through the pool's own ``messages`` and ``prompt_completion`` record rules, and every
format gives the same instructions, responses and (from the manifest) ids.

Nothing lost, nothing escapes: a dataset is built in a temporary sibling folder
(``.<name>.tmp-<pid>-<random>``), data then manifest, flushed to disk, then swapped in (the
earlier dataset renamed aside, the new one renamed in, the earlier one removed), so a
failure at any point leaves the earlier finished dataset as it was. Writers of one folder
hold :func:`dataset_lock`; :func:`check_output_dir` refuses, before any work, an output
that is a file, unwritable, empty, or a folder holding something else than a dataset of
ours.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import shutil
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tritondiv._io import (
    check_path_component,
    clean_stale_temporaries,
    file_sha256,
    fsync_dir,
    safe_join,
    temporary_name,
    write_json_atomic,
)
from tritondiv._outdir import (
    DatasetBusyError,
    DatasetError,
    OutputDirError,
    check_target,
    check_writable,
    dataset_lock,
    recover_swapped_out,
    swap_in,
)

if TYPE_CHECKING:
    from tritondiv.pool import Pool

__all__ = [
    "DATA_FILE",
    "DATA_FILES",
    "LADDER_FILE",
    "MANIFEST_FILE",
    "MANIFEST_VERSION",
    "OUTPUT_FORMATS",
    "Dataset",
    "DatasetBusyError",
    "DatasetError",
    "OutputDirError",
    "check_output_dir",
    "check_output_format",
    "data_file",
    "dataset_lock",
    "find_datasets",
    "is_dataset_source",
    "jsonable",
    "level_dir",
    "manifest_data_file",
    "output_format_of",
    "package_versions",
    "read_dataset",
    "read_ladder",
    "read_manifest",
    "verify_dataset",
    "versions",
    "write_dataset",
]

DATA_FILE = "data.jsonl"
MANIFEST_FILE = "manifest.json"
MANIFEST_VERSION = 1
LADDER_FILE = "ladder.json"
#: The output formats of a dataset (``--output-format``), the first the default.
OUTPUT_FORMATS: tuple[str, ...] = ("jsonl", "parquet", "messages", "prompt-completion")
#: The data file of each output format.
DATA_FILES: dict[str, str] = {
    "jsonl": DATA_FILE,
    "parquet": "data.parquet",
    "messages": "data.messages.jsonl",
    "prompt-completion": "data.prompt_completion.jsonl",
}
#: The pool record format that reads a converted data file back.
_RECORD_FORMATS = {"messages": "messages", "prompt-completion": "prompt_completion"}
_FORMAT_OF_FILE = {name: fmt for fmt, name in DATA_FILES.items()}
_DATASET_FILES = frozenset({*DATA_FILES.values(), MANIFEST_FILE})

_log = logging.getLogger(__name__)


def check_output_format(output_format: Any) -> str:
    """Return ``output_format`` when it is one of :data:`OUTPUT_FORMATS`.

    Raises
    ------
    TypeError
        It is not a str.
    ValueError
        It is another name; the message lists the formats.
    """
    if not isinstance(output_format, str):
        raise TypeError(f"output_format must be a str, got {type(output_format).__name__}")
    if output_format not in OUTPUT_FORMATS:
        raise ValueError(
            f"output_format (--output-format) must be one of {', '.join(OUTPUT_FORMATS)}; "
            f"got {output_format!r}"
        )
    return output_format


def _data_names(names: Any) -> list[str]:
    """The data file names among ``names``."""
    return [n for n in names if n in _FORMAT_OF_FILE]


# ----------------------------------------------------------------------------- output checks
def _is_ours(manifest_path: Path) -> bool:
    """Whether ``manifest_path`` is a manifest written by :func:`write_dataset`."""
    try:
        with open(manifest_path, encoding="utf-8") as fh:
            man = json.load(fh)
    except (OSError, ValueError):
        return False
    return (
        isinstance(man, dict)
        and "manifest_version" in man
        and isinstance(man.get("data"), dict)
        and man["data"].get("file") in _FORMAT_OF_FILE
    )


def _listed_by_ladder(path: Path) -> bool:
    """Whether ``path`` is a level folder that the ladder index two floors up lists (an
    unfinished level of a ladder of ours: its data without a manifest)."""
    root = path.absolute().parent.parent
    try:
        index = read_manifest(root / LADDER_FILE)
    except (OSError, ValueError):
        return False
    rel = f"{path.absolute().parent.name}/{path.absolute().name}"
    entries = index.get("datasets")
    return isinstance(entries, list) and any(
        isinstance(e, dict) and e.get("path") == rel for e in entries
    )


def check_output_dir(out: str | os.PathLike[str], *, ladder: bool = False) -> Path:
    """Check, before any work, that ``out`` can receive a dataset (or, with ``ladder``, a
    ladder); return it as a Path.

    A dataset's ``out`` is new, empty, or an earlier dataset of ours (a data file of
    :data:`DATA_FILES` + ``manifest.json`` written by :func:`write_dataset`, or an
    unfinished level that its ladder's index lists; nothing else: it is replaced as a
    whole). A ladder's ``out`` is new or a folder that holds no data file. Either way the nearest existing folder
    must be writable, and ``out`` must not be the file system root nor hold the current
    folder.

    Raises
    ------
    TypeError
        ``out`` is not a str or path.
    OutputDirError
        ``out`` is empty, a file (or below one), unwritable, the root or the current
        folder (or above it), holds a data file that no manifest of ours vouches for,
        or (for a dataset) other files.
    """
    path = check_target(out)
    what = "ladder" if ladder else "dataset"
    if path.is_dir():
        names = sorted(os.listdir(path))
        data_names = _data_names(names)
        if data_names and (
            ladder or not (_is_ours(path / MANIFEST_FILE) or _listed_by_ladder(path))
        ):
            raise OutputDirError(
                f"output folder {path} holds a {data_names[0]} that is not "
                + ("a ladder's" if ladder else "a tritondiv dataset (no manifest of ours)")
                + ": pass another folder, or delete it"
            )
        if not ladder:
            other = [n for n in names if n not in _DATASET_FILES]
            if MANIFEST_FILE in names and not data_names and not _is_ours(path / MANIFEST_FILE):
                other.append(MANIFEST_FILE)
            if other:
                shown = ", ".join(other[:5]) + (", ..." if len(other) > 5 else "")
                raise OutputDirError(
                    f"output folder {path} holds other files than a dataset ({shown}); the "
                    "dataset replaces the whole folder: pass a new or empty folder"
                )
    check_writable(path, what)
    return path


def level_dir(strategy: str, level_index: int) -> str:
    """Relative path of a ladder dataset: ``<strategy>/level-<i>``.

    Raises
    ------
    ValueError
        ``strategy`` is not a safe file name, or ``level_index`` is not an integer >= 0.
    """
    check_path_component(strategy, "strategy name")
    if isinstance(level_index, bool) or not isinstance(level_index, (int, np.integer)):
        raise TypeError(f"level_index must be an int, got {type(level_index).__name__}")
    if level_index < 0:
        raise ValueError(f"level_index must be >= 0, got {level_index}")
    return f"{strategy}/level-{int(level_index)}"


def jsonable(value: Any) -> Any:
    """Convert numpy scalars/arrays (recursively) into JSON-ready Python values."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def versions() -> dict[str, str | None]:
    """Versions of tritondiv and the libraries a dataset depends on."""
    import tritondiv

    return {
        "tritondiv": tritondiv.__version__,
        "python": platform.python_version(),
        **package_versions(
            ("numpy", "tokenizers", "sentence-transformers", "torch", "scikit-learn")
        ),
    }


def package_versions(packages: Sequence[str]) -> dict[str, str | None]:
    """The installed version of each distribution in ``packages`` (``None``: not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {}
    for pkg in packages:
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def _write_records(path: Path, where: Path, records: Iterable[dict[str, Any]]) -> int:
    """Write ``records`` as JSON lines to the new file ``path`` (``where``: the name in
    messages); returns how many."""
    n = 0
    with open(path, "x", encoding="utf-8") as fh:
        for n, rec in enumerate(records, 1):
            try:
                fh.write(json.dumps(jsonable(rec), ensure_ascii=False))
            except UnicodeEncodeError as exc:
                bad = exc.object[exc.start : exc.end]
                raise DatasetError(
                    f"record {n - 1} cannot be written to {where}: it holds text that "
                    f"is not valid Unicode ({bad!r}: {exc.reason}); fix the record in the pool"
                ) from None
            except (TypeError, ValueError) as exc:
                raise DatasetError(f"record {n - 1} cannot be written to {where}: {exc}") from None
            fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    return n


def _write_parquet(path: Path, where: Path, records: Sequence[dict[str, Any]]) -> int:
    """Write ``records`` as the rows of a parquet table (a column per field, in order of
    first appearance; null where a record lacks the field) to the new file ``path``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [jsonable(r) for r in records]
    names: dict[str, None] = {}
    for r in rows:
        names.update(dict.fromkeys(r))
    columns = {}
    for name in names:
        try:
            columns[name] = pa.array([r.get(name) for r in rows])
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as exc:
            raise DatasetError(
                f"field {name!r} cannot be a column of {where}: its values differ in type across "
                f"records ({exc}); use --output-format jsonl (any records) instead"
            ) from None
    table = pa.table(columns)
    with open(path, "xb") as fh:
        pq.write_table(table, fh)
        fh.flush()
        os.fsync(fh.fileno())
    return len(rows)


def _converted(fmt: str, where: Path, samples: Pool) -> Iterator[dict[str, Any]]:
    """The records of a TRL format (``messages``, ``prompt-completion``) of ``samples``."""
    ids, instructions, responses = samples.ids, samples.instruction, samples.response
    for n in range(len(samples)):
        sid, instruction, response = str(ids[n]), str(instructions[n]), str(responses[n])
        if fmt == "prompt-completion":
            yield {"id": sid, "prompt": instruction, "completion": response}
            continue
        for what, text in (("instruction", instruction), ("response", response)):
            if not text.strip():
                raise DatasetError(
                    f"sample {n} (id {sid!r}) cannot be written to {where}: its {what} is "
                    "empty, and a conversation leaves empty turns out; use --output-format "
                    "prompt-completion or jsonl"
                )
        yield {
            "id": sid,
            "messages": [
                {"role": "user", "content": instruction},
                {"role": "assistant", "content": response},
            ],
        }


def _write_data(path: Path, where: Path, fmt: str, samples: Any) -> int:
    from tritondiv.pool import Pool

    if fmt in _RECORD_FORMATS:
        if not isinstance(samples, Pool):
            raise TypeError(
                f"output_format {fmt!r} needs the selected samples as a Pool "
                "(pool.subset(indices)), not a list of records"
            )
        return _write_records(path, where, _converted(fmt, where, samples))
    records = samples.records if isinstance(samples, Pool) else samples
    if fmt == "parquet":
        return _write_parquet(path, where, records)
    return _write_records(path, where, records)


def write_dataset(
    out_dir: str | os.PathLike[str],
    records: Sequence[dict[str, Any]] | Pool,
    manifest: dict[str, Any],
    *,
    output_format: str = "jsonl",
) -> dict[str, Any]:
    """Write the dataset folder ``out_dir``: its data file (:data:`DATA_FILES`) then
    ``manifest.json``.

    The folder is built beside ``out_dir`` and swapped in whole (see the module
    docstring), holding :func:`dataset_lock`; a failure (a full disk, a record that cannot
    be written) leaves an earlier dataset at ``out_dir`` intact. ``out_dir`` is checked
    first (:func:`check_output_dir`), and temporaries of killed runs beside it are removed.

    Parameters
    ----------
    out_dir : path
        The dataset directory (created, or replaced when it holds a dataset of ours).
    records : sequence of dict, or Pool
        The selected records, in selection order; or the selected samples as a
        :class:`~tritondiv.pool.Pool` (``pool.subset(indices)``), which ``messages`` and
        ``prompt-completion`` need (their texts and ids).
    manifest : dict
        Manifest fields; ``data`` (file, format, sha256, records) and ``versions`` are
        added.
    output_format : str
        One of :data:`OUTPUT_FORMATS` (see the module docstring).

    Returns
    -------
    dict
        The manifest as written.

    Raises
    ------
    OutputDirError
        ``out_dir`` cannot receive a dataset.
    DatasetBusyError
        Another process writes ``out_dir``.
    DatasetError
        A record cannot be written (not JSON-serializable, or text that is not valid
        Unicode such as a lone surrogate; for parquet, a field whose values differ in
        type; for messages, an empty text); the message gives its index or field.
    ValueError
        ``output_format`` is not one of :data:`OUTPUT_FORMATS`.
    """
    fmt = check_output_format(output_format)
    name = DATA_FILES[fmt]
    out = check_output_dir(out_dir)
    with dataset_lock(out):
        out = check_output_dir(out)  # again: the folder may have changed while waiting
        parent = out.absolute().parent
        parent.mkdir(parents=True, exist_ok=True)
        recover_swapped_out(parent, lambda folder: _is_ours(folder / MANIFEST_FILE))
        clean_stale_temporaries(parent)
        tmp = parent / temporary_name(out.name)
        tmp.mkdir()
        try:
            n = _write_data(tmp / name, out / name, fmt, records)
            full = {"manifest_version": MANIFEST_VERSION, **manifest}
            full["data"] = {
                "file": name,
                "format": fmt,
                "sha256": file_sha256(tmp / name),
                "records": n,
            }
            full.setdefault("versions", versions())
            full = jsonable(full)
            write_json_atomic(tmp / MANIFEST_FILE, full)
            fsync_dir(tmp)
            swap_in(tmp, out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    _log.debug("wrote %s (%d records, %s, sha256 %s)", out / name, n, fmt,
               full["data"]["sha256"][:12])  # fmt: skip
    return full


def read_manifest(path: str | Path) -> dict[str, Any]:
    """Read ``manifest.json`` of a dataset directory (or the file itself)."""
    p = Path(path)
    if p.is_dir():
        p = p / MANIFEST_FILE
    try:
        with open(p, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{p}: no manifest (the dataset was not finished): rerun the select/ladder command"
        ) from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{p}: not valid JSON ({exc}): delete the directory and rerun") from None
    if not isinstance(data, dict):
        raise ValueError(f"{p}: a manifest must be a JSON object: delete the directory and rerun")
    return data


def verify_dataset(out_dir: str | Path, expect: dict[str, Any] | None = None) -> tuple[bool, str]:
    """Whether ``out_dir`` holds a finished, intact dataset.

    Finished and intact: ``manifest.json`` parses, the data file it names (one of
    :data:`DATA_FILES`) exists and its sha256 equals the manifest's, and every key of
    ``expect`` has the same value in the manifest.

    Returns
    -------
    (bool, str)
        ``(True, "ok")`` or ``(False, reason)``.
    """
    out = Path(out_dir)
    if not (out / MANIFEST_FILE).is_file():
        return False, f"{out / MANIFEST_FILE} is missing"
    try:
        man = read_manifest(out)
    except (ValueError, FileNotFoundError) as exc:
        return False, str(exc)
    try:
        data = out / manifest_data_file(man)
    except DatasetError as exc:
        return False, f"{out / MANIFEST_FILE}: {exc}"
    if not data.is_file():
        return False, f"{data} is missing"
    want = (man.get("data") or {}).get("sha256")
    if not want or file_sha256(data) != want:
        return False, f"{data} does not match the sha256 in its manifest"
    for key, value in (expect or {}).items():
        got = man.get(key)
        if isinstance(value, float) and isinstance(got, (int, float)):
            if abs(float(got) - value) > 1e-9:
                return False, f"manifest {key}={got!r}, expected {value!r}"
        elif jsonable(value) != got:
            return False, f"manifest {key}={got!r}, expected {jsonable(value)!r}"
    return True, "ok"


def manifest_data_file(manifest: dict[str, Any]) -> str:
    """The data file name a manifest records (``data.jsonl`` for a manifest that names
    none, as the first ones did).

    Raises
    ------
    DatasetError
        The manifest names a file that is not one of :data:`DATA_FILES`.
    """
    data = manifest.get("data")
    name = data.get("file", DATA_FILE) if isinstance(data, dict) else DATA_FILE
    if name not in _FORMAT_OF_FILE:
        raise DatasetError(
            f"the manifest names the data file {name!r}, not one of "
            f"{', '.join(DATA_FILES.values())}: rerun the select/ladder command"
        )
    return str(name)


def output_format_of(manifest: dict[str, Any] | None, data: str | os.PathLike[str]) -> str:
    """The output format of a dataset: its manifest's ``data.format``, else the one its
    data file's name says (``jsonl`` for any other file)."""
    fmt = ((manifest or {}).get("data") or {}).get("format")
    if fmt in OUTPUT_FORMATS:
        return str(fmt)
    return _FORMAT_OF_FILE.get(Path(data).name, "jsonl")


# ----------------------------------------------------------------------------- read back
@dataclass(frozen=True)
class Dataset:
    """A dataset read back: its pool of records, its manifest (``None`` for a bare data
    file) and where it lies."""

    path: Path
    data_file: Path
    manifest: dict[str, Any] | None
    pool: Pool

    def __len__(self) -> int:
        return len(self.pool)

    @property
    def records(self) -> list[dict[str, Any]]:
        """The original records, in selection order."""
        return self.pool.records

    @property
    def ids(self) -> list[str]:
        """The sample ids, in selection order (the pool's, as the manifest records them)."""
        return list(self.pool.ids)

    @property
    def instructions(self) -> list[str]:
        return list(self.pool.instruction)

    @property
    def responses(self) -> list[str]:
        return list(self.pool.response)


def _folder_data_file(folder: Path) -> Path | None:
    """The data file of a dataset folder: the one its manifest names, else the first of
    :data:`DATA_FILES` present; ``None`` when there is none."""
    man_path = folder / MANIFEST_FILE
    if man_path.is_file():
        try:
            return folder / manifest_data_file(read_manifest(man_path))
        except (ValueError, OSError):
            pass
    for name in DATA_FILES.values():
        if (folder / name).is_file():
            return folder / name
    return None


def data_file(path: str | os.PathLike[str]) -> Path:
    """The data file of a dataset folder (``<path>/data.jsonl``, or the file of the
    format its manifest records), or ``path`` itself."""
    p = Path(path)
    if p.is_dir():
        return _folder_data_file(p) or p / DATA_FILE
    return p


def is_dataset_source(path: str | os.PathLike[str]) -> bool:
    """Whether :func:`read_dataset` reads ``path``: a folder holding a data file of
    :data:`DATA_FILES`, a dataset's data file, or a JSON-lines file (any file whose records
    may mix formats)."""
    p = Path(path)
    if p.is_dir():
        found = _folder_data_file(p)
        return found is not None and found.is_file()
    return p.is_file() and (
        p.suffix == ".jsonl" or (p.name in _FORMAT_OF_FILE and (p.parent / MANIFEST_FILE).is_file())
    )


def _manifest_of(path: Path) -> tuple[Path, dict[str, Any] | None]:
    """(data file, manifest or None) of a dataset folder or data file."""
    if path.is_dir():
        found = _folder_data_file(path)
        if found is None or not found.is_file():
            raise FileNotFoundError(
                f"{path} holds no {found.name if found else 'data file'} (one of "
                f"{', '.join(DATA_FILES.values())}): pass a dataset folder written by "
                "`tritondiv select`/`ladder`, or a pool file"
            )
        data = found
    elif path.is_file():
        data = path
    else:
        raise FileNotFoundError(f"{path} does not exist: pass a dataset folder or a pool file")
    man_path = data.parent / MANIFEST_FILE
    if data.name in _FORMAT_OF_FILE and man_path.is_file():
        manifest = read_manifest(man_path)
        if manifest_data_file(manifest) == data.name:
            return data, manifest
    return data, None


def _check_sha(data: Path, manifest: dict[str, Any]) -> None:
    man_path = data.parent / MANIFEST_FILE
    want = (manifest.get("data") or {}).get("sha256")
    if not want:
        raise DatasetError(
            f"{man_path} records no sha256 of {data}: rerun the select/ladder command"
        )
    got = file_sha256(data)
    if got != want:
        raise DatasetError(
            f"{data} does not match the sha256 in {man_path} (file {got[:12]}..., manifest "
            f"{str(want)[:12]}...): the data changed after it was written; rerun the "
            "select/ladder command"
        )


def read_dataset(
    path: str | os.PathLike[str], *, verify: bool = True, limit: int | None = None
) -> Dataset:
    """Read a dataset back: a dataset folder, its data file, or any JSON-lines file.

    A ``jsonl`` or ``parquet`` dataset: each record's format is detected on its own (a
    pool of several files gives a dataset of several formats) through the pool's one
    record rule; the manifest's pool options (``first_turn_only``, ``allow_empty``, a
    forced ``format``, a field mapping) apply. A ``messages`` or ``prompt-completion``
    dataset is read by that record rule. With a manifest, the samples' ids are the ones it
    records (the pool ids), whatever the format.

    Parameters
    ----------
    path : path
        A folder holding a data file of :data:`DATA_FILES` (+ ``manifest.json``), or a
        data file (its manifest is the ``manifest.json`` beside it that names it), or any
        ``.jsonl`` file.
    verify : bool
        Check the data's sha256 against the manifest first (when there is one).
    limit : int, optional
        Read only the first ``limit`` records.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist, or a folder holds no data file.
    DatasetError
        With ``verify``, the data does not match its manifest's sha256.
    PoolError
        A record is bad; the message names the file, line and field.
    """
    p = Path(path)
    data, manifest = _manifest_of(p)
    if verify and manifest is not None:
        _check_sha(data, manifest)
    loader = (manifest or {}).get("pool") or {}
    output_format = output_format_of(manifest, data)
    kwargs: dict[str, Any] = {"allow_empty": bool(loader.get("allow_empty")), "limit": limit}
    if output_format in _RECORD_FORMATS:
        # written by us in one TRL format: read back by that format's record rule
        kwargs["format"] = _RECORD_FORMATS[output_format]
    else:
        fmt = loader.get("format")
        kwargs["format"] = fmt if fmt and fmt != "auto" else "mixed"
        kwargs["first_turn_only"] = bool(loader.get("first_turn_only"))
        # a pool read with a field mapping is read back with the same mapping
        for key, kw in (("instruction_field", "instruction"), ("response_field", "response"),
                        ("id_field", "id")):  # fmt: skip
            if loader.get(key) is not None:
                kwargs[kw] = loader[key]
    pool = _with_manifest_ids(_load_records(data, **kwargs), manifest)
    return Dataset(p, data, manifest, pool)


def _load_records(data: Path, **kwargs: Any) -> Pool:
    from tritondiv.pool import load_pool

    return load_pool(str(data), **kwargs)


def _with_manifest_ids(pool: Pool, manifest: dict[str, Any] | None) -> Pool:
    """``pool`` with the sample ids its manifest records (the pool ids of the selected
    samples, whatever the data file holds), when the manifest lists one per record."""
    ids = (manifest or {}).get("ids")
    if not isinstance(ids, list) or len(ids) < len(pool) or pool.skipped:
        return pool
    want = [str(i) for i in ids[: len(pool)]]
    if want == list(pool.ids):
        return pool
    from tritondiv.pool import Pool

    return Pool(want, pool.instruction, pool.response, pool.source, pool._records)


def find_datasets(root: str | os.PathLike[str]) -> list[tuple[Path, dict[str, Any]]]:
    """Every finished dataset folder below ``root`` (by its manifest), in sorted path order:
    ``[(folder, manifest)]``."""
    out = []
    for mp in sorted(Path(root).rglob(MANIFEST_FILE)):
        if any(part.startswith(".") for part in mp.relative_to(root).parts):
            continue  # temporaries and moved-aside copies
        out.append((mp.parent, read_manifest(mp)))
    return out


def read_ladder(
    ladder_dir: str | os.PathLike[str], *, missing: str = "error"
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The ladder index (``ladder.json``) and its datasets in index order:
    ``[{strategy, level, level_index, path, manifest}]`` (``path`` below ``ladder_dir``).

    Parameters
    ----------
    missing : {"error", "skip"}
        What to do with a dataset of the index that is not finished (no manifest).

    Raises
    ------
    FileNotFoundError
        No ``ladder.json``; or (``missing="error"``) a dataset is not finished.
    ValueError
        The index lists no datasets, or a dataset whose strategy is not a safe file name
        or whose path leads outside ``ladder_dir``.
    """
    if missing not in ("error", "skip"):
        raise ValueError(f"missing must be 'error' or 'skip', got {missing!r}")
    root = Path(ladder_dir)
    index_path = root / LADDER_FILE
    if not index_path.is_file():
        raise FileNotFoundError(
            f"{index_path} does not exist: pass a folder written by `tritondiv ladder`"
        )
    index = read_manifest(index_path)
    entries = index.get("datasets")
    if not entries:
        raise ValueError(
            f"{index_path} lists no datasets (is the ladder finished? "
            f"status={index.get('status')!r})"
        )
    out = []
    for n, d in enumerate(entries):
        try:
            strategy = check_path_component(d.get("strategy"), "strategy name")
            level_index = int(d["level_index"])
            path = safe_join(root, d["path"])
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{index_path}: dataset {n} ({d!r}) is not valid: {exc}") from None
        found = _folder_data_file(path) if (path / MANIFEST_FILE).is_file() else None
        if found is None or not found.is_file():
            if missing == "skip":
                continue
            raise FileNotFoundError(
                f"{path} has no data file + {MANIFEST_FILE}: rerun `tritondiv ladder`"
            )
        man = read_manifest(path)
        out.append(
            {
                "strategy": strategy,
                "level": float(d.get("level", man.get("level"))),
                "level_index": level_index,
                "path": root / d["path"],
                "manifest": man,
            }
        )
    return index, out
