"""The commands' Ray engine without a cluster: the strategies refused on Ray, bad options, and
``Features.set_incidence`` (what the Ray incidences are handed to)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import tritondiv as td
from tritondiv.distributed.engine import NOT_ON_RAY, check_strategies
from tritondiv.feature_store import FeatureOptions, Features
from tritondiv.incidence import Incidence
from tritondiv.tokens import WhitespaceTokenizer


@pytest.fixture
def features(tmp_path: Path) -> Features:
    rows = [
        {"instruction": f"question {i} about apples", "output": f"answer {i} with pears"}
        for i in range(5)
    ]
    path = tmp_path / "pool.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return Features(td.load_pool(path), FeatureOptions(lo=1, hi=10, progress=False))


def _inc(n: int) -> Incidence:
    offsets = np.arange(n + 1, dtype=np.int64)
    return Incidence(offsets, np.zeros(n, dtype=np.int32), 1)


def test_check_strategies_names_the_refused_ones_and_the_way_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tritondiv.strategies import STRATEGIES

    assert NOT_ON_RAY == ()  # every strategy runs with --engine ray now
    check_strategies(STRATEGIES)
    monkeypatch.setattr("tritondiv.distributed.engine.NOT_ON_RAY", ("kcenter", "threshold"))
    with pytest.raises(ValueError, match=r"strategy kcenter, threshold: not on Ray yet"):
        check_strategies(["response-micro", "kcenter", "threshold"])
    with pytest.raises(ValueError, match="--engine local"):
        check_strategies(["kcenter"])


def test_set_incidence_is_what_incidence_returns(features: Features) -> None:
    inc = _inc(5)
    features.set_incidence("response-micro", inc)
    assert features.incidence("response-micro") is inc
    assert features.computed_families() == ["response-micro"]
    assert "types-response-micro" not in features.timings  # nothing was computed here
    # the other micro family is still computed locally, from the tokens
    local = features.incidence("instruction-micro")
    assert local.n_samples == 5 and local is not inc


def test_set_incidence_rejects_what_does_not_fit(features: Features) -> None:
    with pytest.raises(
        TypeError, match=r"set_incidence\('response-micro'\): expected an Incidence"
    ):
        features.set_incidence("response-micro", [[0]] * 5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="the incidence has 4 samples, the pool 5"):
        features.set_incidence("response-micro", _inc(4))
    with pytest.raises(ValueError, match="type family must be one of"):
        features.set_incidence("response-nano", _inc(5))
    features.incidence("instruction-micro")
    with pytest.raises(ValueError, match="computed already"):
        features.set_incidence("instruction-micro", _inc(5))


def test_whitespace_tokenizer_is_refused_before_any_cluster_work(features: Features) -> None:
    from tritondiv.distributed import token_stats_ray

    with pytest.raises(ValueError, match=r"whitespace tokenizer .* not on Ray"):
        token_stats_ray(features.pool, "response", "whitespace")
    with pytest.raises(ValueError, match="whitespace tokenizer"):
        token_stats_ray(features.pool, "response", WhitespaceTokenizer())


def test_commands_refuse_bad_partitions_before_loading_the_pool(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tritondiv.cli import main

    missing = str(tmp_path / "no-such-pool.jsonl")  # never read: the refusal comes first
    select = ["select", missing, "--level", "0.5", "--size", "5", "--out", str(tmp_path / "s")]
    assert main([*select, "--strategy", "kcenter", "--engine", "ray", "--partitions", "0"]) == 2
    assert "partitions (--partitions) must be >= 1" in capsys.readouterr().err
    assert main([*select, "--strategy", "kcenter", "--partitions", "2"]) == 2
    assert "--partitions needs --engine ray" in capsys.readouterr().err
