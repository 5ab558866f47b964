"""token_stats_ray against the local engine on real data: identical counts, df, band,
incidence; a worker killed mid-tokenization changes nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tritondiv as td
from tritondiv.distributed import RayTokenStats, token_stats_ray
from tritondiv.distributed._ray import require_ray

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.*")


def _local(pool: td.Pool, component: str, tokenizer: Any, lo: Any, hi: Any) -> tuple[Any, Any]:
    csr = td.tokenize(pool.component(component), tokenizer, progress=False)
    return td.token_counts(csr), td.token_stats(csr, lo=lo, hi=hi)  # ns=(1, 2)


def _assert_same(res: RayTokenStats, counts: Any, stats: Any) -> None:
    assert res.counts.dtype == np.int64 and res.df.dtype == np.int64
    np.testing.assert_array_equal(res.counts, counts.counts)
    np.testing.assert_array_equal(res.df, counts.df)
    np.testing.assert_array_equal(res.lengths, counts.lengths)
    np.testing.assert_array_equal(res.band, stats.incidence.labels)
    assert res.incidence.n_types == stats.incidence.n_types
    assert res.incidence.offsets.dtype == np.int64 and res.incidence.types.dtype == np.int32
    np.testing.assert_array_equal(res.incidence.offsets, stats.incidence.offsets)
    np.testing.assert_array_equal(res.incidence.types, stats.incidence.types)
    assert res.distinct == stats.distinct  # distinct-1 and distinct-2, exact
    assert res.token_stats() == stats  # every summary field, entropy included


@pytest.mark.slow
@pytest.mark.shared_data
def test_file_shards_match_local_engine(
    ray_session: Any, shard_dir: Path, local_pool: td.Pool, tokenizer: Any
) -> None:
    res = token_stats_ray(
        shard_dir, "response", tokenizer, lo=5, hi=400, num_blocks=6, allow_empty=True
    )
    counts, stats = _local(local_pool, "response", tokenizer, 5, 400)
    assert res.n_samples == len(local_pool) == 1500 + 700 + 2017
    assert res.num_blocks == 6  # 4 files split into 6 blocks
    _assert_same(res, counts, stats)
    assert res.incidence.nnz > 10_000  # a real band, not a trivial one


@pytest.mark.slow
@pytest.mark.shared_data
def test_relative_file_list_keeps_its_order(
    ray_session: Any, shard_dir: Path, tokenizer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(shard_dir)  # the workers run elsewhere: paths must be resolved first
    files = ["c_gsm8k.jsonl", "a_t0_0.jsonl"]  # a list is read in the order given
    from tritondiv.tokens import _default_tokenizer_path

    res = token_stats_ray(files, "instruction", str(_default_tokenizer_path()), lo=2, hi=50)
    pool = td.load_pool(files)
    assert pool.instruction[0].startswith("Natalia")  # GSM8K first
    counts, stats = _local(pool, "instruction", tokenizer, 2, 50)
    _assert_same(res, counts, stats)


@pytest.mark.slow
@pytest.mark.shared_data
def test_in_memory_pool_matches_local_engine(
    instruction_stats: RayTokenStats, local_pool: td.Pool, tokenizer: Any
) -> None:
    # relative thresholds (lo="0.002x", hi="0.1x") resolve against the whole pool
    res = instruction_stats
    assert res.num_blocks == 5
    counts, stats = _local(local_pool, "instruction", tokenizer, "0.002x", "0.1x")
    assert (res.lo, res.hi) == (stats.lo, stats.hi) == (9, 421)
    _assert_same(res, counts, stats)


def _crash_once_tokenizer(tok: Any, marker: Path) -> Any:
    """The real tokenizer (as a fast transformers tokenizer wraps it), except that its first
    use anywhere kills its worker process.

    The class is local, so Ray ships it by value to the workers.
    """

    class CrashOnce:
        def __init__(self, tok: Any, marker: str) -> None:
            self.tok, self.marker = tok, marker

        def get_vocab_size(self, with_added_tokens: bool = True) -> int:
            return int(self.tok.get_vocab_size(with_added_tokens=with_added_tokens))

        @property
        def backend_tokenizer(self) -> Any:
            # tokenize() unwraps a transformers-like tokenizer in the worker: die there once
            try:
                fd = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                return self.tok
            os.write(fd, str(os.getpid()).encode())
            os.close(fd)
            os._exit(1)  # the worker process dies mid-block, as a lost node would

    return CrashOnce(tok, str(marker))


@pytest.mark.slow
@pytest.mark.shared_data
def test_worker_killed_during_tokenize_is_retried(
    ray_session: Any, local_pool: td.Pool, tokenizer: Any, tmp_path: Path
) -> None:
    marker = tmp_path / "crashed"
    pool = local_pool.subset(np.arange(0, len(local_pool), 2))
    res = token_stats_ray(
        pool, "response", _crash_once_tokenizer(tokenizer, marker), lo=3, hi=300, num_blocks=4
    )
    assert marker.is_file()  # the crash did happen
    assert int(marker.read_text()) != os.getpid()  # in a worker, not here
    counts, stats = _local(pool, "response", tokenizer, 3, 300)
    _assert_same(res, counts, stats)


@pytest.mark.slow
@pytest.mark.shared_data
def test_without_retries_the_lost_worker_is_an_error(
    ray_session: Any, local_pool: td.Pool, tokenizer: Any, tmp_path: Path
) -> None:
    marker = tmp_path / "crashed"
    pool = local_pool.subset(np.arange(0, 400))
    with pytest.raises(ray_session.exceptions.WorkerCrashedError, match="worker died"):
        token_stats_ray(
            pool, "response", _crash_once_tokenizer(tokenizer, marker), num_blocks=2, max_retries=0
        )
    assert marker.is_file()


# ---- validation (no cluster needed) --------------------------------------------------------


@pytest.fixture
def tiny_pool() -> td.Pool:
    ins, res = ["add 2 and 2", "name a colour"], ["4", "blue"]
    return td.Pool(["a", "b"], ins, res, ["t.jsonl"] * 2, [{"i": i} for i in range(2)])


def test_bad_arguments_fail_before_the_cluster(tiny_pool: td.Pool) -> None:
    local_pool = tiny_pool
    with pytest.raises(ValueError, match="component"):
        token_stats_ray(local_pool, "output")
    with pytest.raises(ValueError, match="threshold"):
        token_stats_ray(local_pool, "response", lo="ten")
    with pytest.raises(TypeError, match="threshold"):
        token_stats_ray(local_pool, "response", hi=2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="format"):
        token_stats_ray(local_pool, "response", format="csv")
    with pytest.raises(ValueError, match="num_blocks"):
        token_stats_ray(local_pool, "response", num_blocks=0)
    with pytest.raises(TypeError, match="num_blocks"):
        token_stats_ray(local_pool, "response", num_blocks=2.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_retries"):
        token_stats_ray(local_pool, "response", max_retries=-1)
    with pytest.raises(TypeError, match="tokenizer"):
        token_stats_ray(local_pool, "response", tokenizer=42)
    with pytest.raises(FileNotFoundError, match="tokenizer"):
        token_stats_ray(local_pool, "response", tokenizer="/nonexistent/tokenizer.json")
    with pytest.raises(ValueError, match="no samples"):
        token_stats_ray(local_pool.subset([]), "response")
    with pytest.raises(td.PoolError, match="does not exist"):
        token_stats_ray("/nonexistent/pool.jsonl", "response")
    with pytest.raises(TypeError, match="list of paths"):
        token_stats_ray([3], "response")


def test_missing_ray_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(ImportError, match=r"pip install 'ray\[data\]"):
        require_ray()


def test_importing_the_package_does_not_import_ray() -> None:
    code = (
        "import sys, tritondiv.distributed as d\n"
        "from tritondiv.distributed import token_stats_ray, facility_location_greedi\n"
        "assert 'token_stats_ray' in d.__all__\n"
        "print('ray' in sys.modules)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(td.__file__).resolve().parents[1])}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.strip() == "False"
    import tritondiv.distributed as dist

    with pytest.raises(AttributeError):
        _ = dist.not_a_name  # type: ignore[attr-defined]


def test_bigram_keys_match_a_python_reference() -> None:
    from tritondiv.distributed.token_stats import _bigram_keys

    rows = [[], [5], [1, 2, 1, 2], [], [2, 1], [7, 7, 7], [3]]
    csr = td.TokenCSR.from_lists(rows, vocab_size=8)
    keys, total = _bigram_keys(csr.offsets, csr.ids, 8)
    pairs = {(r[j], r[j + 1]) for r in rows for j in range(len(r) - 1)}
    assert sorted(a * 8 + b for a, b in pairs) == keys.tolist()
    assert total == sum(max(len(r) - 1, 0) for r in rows) == 6
    from tritondiv import _core

    distinct, n = _core.distinct_ngrams(csr.offsets, csr.ids, 8, 2)
    assert (keys.size, total) == (distinct, n)  # the core's exact distinct-2
    assert _bigram_keys(np.zeros(1, np.int64), np.zeros(0, np.int32), 8)[1] == 0


def test_union_size_matches_a_set(rng: np.random.Generator) -> None:
    from tritondiv.distributed.token_stats import _union_size

    for k in (0, 1, 2, 5):
        sets = [np.unique(rng.integers(0, 50, size=20)) for _ in range(k)]
        assert _union_size(sets) == len({int(x) for s in sets for x in s})


def test_only_distinct_1_and_2_on_ray(tiny_pool: td.Pool) -> None:
    with pytest.raises(ValueError, match="ns"):
        token_stats_ray(tiny_pool, "response", ns=(1, 3))
