"""FeatureOptions (one source of options, normalized once) and Features (typed accessors)."""

from __future__ import annotations

import argparse
import dataclasses
import json

import numpy as np
import pytest

from tritondiv.feature_store import FeatureOptions, Features
from tritondiv.incidence import Incidence


def test_every_option_has_help_and_a_cli_spelling() -> None:
    for f in dataclasses.fields(FeatureOptions):
        assert f.metadata["help"].strip(), f.name
        assert isinstance(f.metadata["cli"], dict), f.name


def test_band_values_are_normalized_in_one_place() -> None:
    assert FeatureOptions(lo="10", hi=" 500 ").to_dict()["lo"] == 10
    opts = FeatureOptions(lo="10", hi=" 500 ")
    assert (opts.lo, opts.hi) == (10, 500)
    assert opts == FeatureOptions()  # the CLI's "10" and the API's 10 are one value
    rel = FeatureOptions(lo=" 0.01x", hi="0.5x")
    assert (rel.lo, rel.hi) == ("0.01x", "0.5x")
    # also on assignment (a resumed ladder compares the recorded options)
    opts.hi = "400"
    assert opts.hi == 400
    assert json.loads(json.dumps(opts.to_dict()))["hi"] == 400


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"lo": "ten"}, ValueError, r"lo \(--lo\): band threshold 'ten'"),
        ({"hi": "0.5%"}, ValueError, r"hi \(--hi\)"),
        ({"lo": -1}, ValueError, r"lo \(--lo\)"),
        ({"lo": 1.5}, TypeError, r"lo \(--lo\)"),
        ({"lo": True}, TypeError, r"lo \(--lo\)"),
        ({"lo": 600}, ValueError, r"lo \(--lo\) 600 is above hi \(--hi\) 500"),
        ({"topics": 0}, ValueError, r"topics \(--topics\) must be >= 1"),
        ({"tag_max_words": 0}, ValueError, r"tag_max_words \(--tag-max-words\)"),
        ({"knn": "20"}, TypeError, r"knn \(--knn\)"),
        ({"component": "both"}, ValueError, r"component \(--component\) must be one of"),
        ({"topic_method": "dbscan"}, ValueError, r"topic_method"),
        ({"g": "exp"}, ValueError, r"g \(--g\)"),
        ({"tau": 1.5}, ValueError, r"tau \(--tau\)"),
        ({"tagger": "rake"}, ValueError, r"tagger \(--tagger\) 'rake' is unknown"),
        ({"tagger": "column:"}, ValueError, r"tagger"),
        ({"cache": "no"}, TypeError, r"cache"),
        ({"embeddings_response": 3}, TypeError, r"embeddings_response"),
        ({"sampler": "random"}, ValueError, r"sampler \(--sampler\) must be one of"),
        ({"typeless": "drop"}, ValueError, r"typeless \(--typeless\)"),
        ({"stratify": "file"}, ValueError, r"stratify \(--stratify\)"),
        ({"length_band": "500"}, ValueError, r"length_band \(--length-band\): .*LO:HI"),
        ({"length_band": "9:3"}, ValueError, r"length_band .*0 <= LO <= HI"),
        ({"length_band": "a:b"}, ValueError, r"length_band .*whole token counts"),
        ({"length_band": 500}, TypeError, r"length_band"),
        ({"knn_method": "hnsw"}, ValueError, r"knn_method \(--knn-method\)"),
        ({"nprobe": 0}, ValueError, r"nprobe \(--nprobe\) must be >= 1"),
        ({"graph": 3}, TypeError, r"graph \(--graph\)"),
    ],
)
def test_bad_options_name_the_option(kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        FeatureOptions(**kwargs)


def test_relative_and_absolute_mix_is_checked_with_the_real_pool_size() -> None:
    # "0.5x" vs 500: only a pool says which is larger; no fake pool size at parse time
    opts = FeatureOptions(lo="0.5x", hi=500)
    feats = Features(list(range(2000)), opts)
    with pytest.raises(ValueError, match="a pool of 2,000 samples") as exc:
        feats.band()
    assert "1000000" not in str(exc.value) and "1,000,000" not in str(exc.value)
    assert Features(list(range(100)), opts).band() == (50, 500)


def test_from_dict_round_trip_and_unknown_keys() -> None:
    opts = FeatureOptions(lo="0.01x", topics=12, progress=False)
    assert FeatureOptions.from_dict(opts.to_dict()) == opts
    with pytest.raises(ValueError, match="unknown options"):
        FeatureOptions.from_dict({"lo": 10, "nope": 1})


class _Pool:
    """A tiny pool: two components of fixed texts, a fingerprint, ids."""

    def __init__(self, texts: list[str]) -> None:
        self.response = texts
        self.instruction = [t.upper() for t in texts]
        self.ids = [f"s{i}" for i in range(len(texts))]
        self.fingerprint = "tiny-" + str(len(texts))

    def __len__(self) -> int:
        return len(self.response)

    def component(self, name: str) -> list[str]:
        return getattr(self, name)


def test_features_compute_once_and_expose_typed_accessors(tmp_path) -> None:
    texts = [f"word{i % 7} common token{i % 3}" for i in range(40)]
    emb = np.eye(40, 8, dtype=np.float32) + 0.1
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    path = tmp_path / "r.npy"
    np.save(path, emb)
    feats = Features(
        _Pool(texts), FeatureOptions(lo=2, hi=30, embeddings_response=str(path), progress=False)
    )
    assert not feats.has_tokens("response") and feats.computed_families() == []
    inc = feats.incidence("response-micro")
    assert isinstance(inc, Incidence) and inc.n_samples == 40
    assert feats.incidence("response-micro") is inc  # computed once
    assert feats.has_tokens("response") and not feats.has_tokens("instruction")
    assert feats.computed_families() == ["response-micro"]
    X = feats.embeddings("response")
    assert X.dtype == np.float32 and X.shape == (40, 8) and feats.has_embeddings("response")
    assert feats.embeddings("response") is X
    assert set(feats.timings) >= {"tokenize-response", "types-response-micro", "embed-response"}
    with pytest.raises(ValueError, match="type family"):
        feats.incidence("response-nano")
    with pytest.raises(ValueError, match="component"):
        feats.tokens("both")
    assert not hasattr(feats, "has") and not hasattr(feats, "_cache")


def test_features_checks_its_arguments() -> None:
    with pytest.raises(TypeError, match="FeatureOptions"):
        Features([], {"lo": 10})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="seed"):
        Features([], seed="0")  # type: ignore[arg-type]


def test_progress_none_follows_the_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    class _Err:
        def __init__(self, tty: bool) -> None:
            self.tty = tty

        def isatty(self) -> bool:
            return self.tty

    feats = Features([], FeatureOptions())
    monkeypatch.setattr(sys, "stderr", _Err(False))
    assert feats.progress is False
    monkeypatch.setattr(sys, "stderr", _Err(True))
    assert feats.progress is True
    assert Features([], FeatureOptions(progress=False)).progress is False


def test_the_cli_parser_is_built_from_the_fields() -> None:
    from tritondiv.commands._options import add_arguments, from_args

    p = argparse.ArgumentParser()
    add_arguments(p, FeatureOptions)
    assert from_args(FeatureOptions, p.parse_args([])) == FeatureOptions()
    args = p.parse_args(["--lo", "0.01x", "--hi", "300", "--no-cache", "--no-progress"])
    opts = from_args(FeatureOptions, args)
    assert (opts.lo, opts.hi, opts.cache, opts.progress) == ("0.01x", 300, False, False)
    helps = {a.dest: a.help for a in p._actions}
    assert "(default 20)" in helps["knn"] and "(default kmeans)" in helps["topic_method"]


def test_protocol_options_defaults_and_normalization() -> None:
    opts = FeatureOptions()
    assert (opts.sampler, opts.typeless, opts.length_band, opts.stratify) == (
        "greedy",
        "exclude",
        None,
        None,
    )
    assert (opts.knn_method, opts.nprobe, opts.graph) == ("exact", None, None)
    assert FeatureOptions(length_band=" 450 : 550 ").length_band == "450:550"
    assert FeatureOptions(length_band=(450, 550)).length_band == "450:550"
    assert FeatureOptions(length_band=":550").length_band == "0:550"
    assert FeatureOptions(length_band="450:").length_band == "450:"
    from tritondiv.feature_store import parse_length_band

    assert parse_length_band("450:") == (450, None) and parse_length_band(None) is None
    from tritondiv.commands._options import add_arguments, from_args

    p = argparse.ArgumentParser()
    add_arguments(p, FeatureOptions)
    argv = "--sampler uniform --typeless include --length-band 450:550 --stratify source"
    args = p.parse_args([*argv.split(), "--knn-method", "ivf", "--nprobe", "8"])
    got = from_args(FeatureOptions, args)
    assert got == FeatureOptions(
        sampler="uniform",
        typeless="include",
        length_band="450:550",
        stratify="source",
        knn_method="ivf",
        nprobe=8,
    )


def test_length_band_counts_response_tokens_of_the_micro_tokenizer() -> None:
    texts = ["a", "a b", "a b c", "a b c d", "a b c d e"]
    feats = Features(
        _Pool(texts),
        FeatureOptions(tokenizer="whitespace", length_band="2:4", cache=False, progress=False),
    )
    assert feats.response_lengths().tolist() == [1, 2, 3, 4, 5]
    assert feats.in_length_band().tolist() == [False, True, True, True, False]
    assert feats.tokenizer_identity()["name"] == "whitespace"
    assert Features(_Pool(texts), FeatureOptions(cache=False)).in_length_band() is None


def test_a_users_graph_is_loaded_and_checked(tmp_path) -> None:
    import scipy.sparse as sp

    from tritondiv.feature_store import load_graph

    G = sp.random(6, 6, density=0.5, random_state=0, format="csr")
    sp.save_npz(tmp_path / "g.npz", G)
    got = load_graph(tmp_path / "g.npz", 6)
    assert got.shape == (6, 6) and np.allclose(got.toarray(), G.toarray())
    with pytest.raises(ValueError, match=r"shape \(6, 6\), expected \(5, 5\)"):
        load_graph(tmp_path / "g.npz", 5)
    sp.save_npz(tmp_path / "neg.npz", sp.csr_matrix(-np.eye(6)))
    with pytest.raises(ValueError, match="finite and >= 0"):
        load_graph(tmp_path / "neg.npz", 6)
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_graph(tmp_path / "none.npz", 6)
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a scipy sparse"):
        load_graph(tmp_path / "bad.npz", 6)
    feats = Features(_Pool(["x"] * 6), FeatureOptions(graph=str(tmp_path / "g.npz")))
    feats._embeddings["response"] = np.eye(6, dtype=np.float32)
    assert np.allclose(feats.knn("response").toarray(), G.toarray())
