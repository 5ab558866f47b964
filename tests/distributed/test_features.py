"""Embeddings and keyphrase tags on Ray Data against the local engine, on real texts: the
embeddings agree to float32 rounding, the two-pass tags and the meso incidence exactly."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pytest

import tritondiv as td
from tritondiv.distributed.features import embed_ray, keyphrase_tags_ray, shared_phrases
from tritondiv.feature_store import FeatureOptions, Features, make_tagger
from tritondiv.features.keyphrase import extract_candidates

pytestmark = [
    pytest.mark.shared_data,
    pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.*"),
]

#: embeddings: max |ray - local| per value (forward batches differ; float32 rounding)
EMB_ATOL = 1e-5


@pytest.fixture(scope="module")
def small_pool(local_pool: td.Pool) -> td.Pool:
    """160 real samples: T0 templates, GSM8K and Code Alpaca rows of the shard pool."""
    rows = np.r_[np.arange(0, 1500, 25), np.arange(1500, 2200, 14), np.arange(2200, 4200, 40)]
    return local_pool.subset(rows)


def test_shared_phrases_is_the_taggers_rule(small_pool: td.Pool) -> None:
    texts = list(small_pool.component("instruction"))
    for min_df, max_df, n in ((2, 0.2, len(texts)), (1, 0.05, len(texts)), (3, 0.01, 60)):
        sub = texts[:n]
        tagger = td.features.KeyphraseTagger(min_df=min_df, max_df=max_df, progress=False)
        want_ok, want_generic = tagger._shared_phrases(sub)
        df = Counter(p for t in sub for p in extract_candidates(t, (1, 3), tagger.max_words))
        got = shared_phrases(list(df), np.array(list(df.values())), n, min_df, max_df)
        assert got is not None
        for names, want in zip(got, (want_ok, want_generic), strict=True):
            keys = np.sort(np.array([hash(p) for p in names], dtype=np.int64))
            np.testing.assert_array_equal(keys, want)
    assert shared_phrases(["a"], np.array([1]), 1, None, None) is None


def test_keyphrase_tags_ray_refuses_other_taggers(small_pool: td.Pool) -> None:
    with pytest.raises(TypeError, match="expected a KeyphraseTagger"):
        keyphrase_tags_ray(small_pool, "instruction", make_tagger("column:tags"))
    with pytest.raises(ValueError, match="component"):
        embed_ray(small_pool, "prompt")


@pytest.mark.slow
def test_meso_and_embeddings_on_ray_equal_the_local_engine(
    ray_session: Any, small_pool: td.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tritondiv.distributed.engine import RayFeatures

    opts = FeatureOptions(progress=False, cache=False)
    ray_feats = RayFeatures(small_pool, opts)
    with monkeypatch.context() as m:  # the driver must not embed or tag itself
        for name in ("embed_pool", "tag_pool"):
            m.setattr(f"tritondiv.features.{name}", _refuse(name))
        inc_ray = ray_feats.incidence("instruction-meso")
        emb_ray = ray_feats.embeddings("instruction")
    local = Features(small_pool, opts)
    inc_local = local.incidence("instruction-meso")
    np.testing.assert_allclose(emb_ray, local.embeddings("instruction"), rtol=0, atol=EMB_ATOL)
    assert ray_feats.tags("instruction") == local.tags("instruction")
    np.testing.assert_array_equal(inc_ray.offsets, inc_local.offsets)
    np.testing.assert_array_equal(inc_ray.types, inc_local.types)
    assert list(inc_ray.labels) == list(inc_local.labels)
    assert inc_ray.n_types == inc_local.n_types > 10
    assert ray_feats.tag_report("instruction") == local.tag_report("instruction")
    assert {"embed-instruction", "tag-instruction"} <= set(ray_feats.timings)
    # blocks of another size: the same tags (tags never depend on the batching)
    again = keyphrase_tags_ray(
        small_pool, "instruction", make_tagger("keyphrase", progress=False),
        doc_embeddings=emb_ray, num_blocks=3,
    )  # fmt: skip
    assert again.tags == local.tags("instruction") and again.shared > 0


def _refuse(name: str) -> Any:
    def refuse(*_a: Any, **_k: Any) -> Any:
        raise AssertionError(f"{name} ran on the driver")

    return refuse


def test_small_pool_is_real(small_pool: td.Pool) -> None:
    assert len(small_pool) == 160 and len(set(small_pool.component("instruction"))) > 100
