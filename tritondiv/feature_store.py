"""The options of a selection (:class:`FeatureOptions`) and the features of one pool
(:class:`Features`).

:class:`FeatureOptions` is the single source of the options that shape features and
selections: each field carries its default, its help text and its command-line spelling
(``dataclasses.field(metadata={"help": ..., "cli": ...})``); the CLI builds its parser
from these fields (:mod:`tritondiv.commands._options`) and the manifests record
:func:`dataclasses.asdict` of them. Values are normalized and validated in one place,
:meth:`FeatureOptions.__setattr__` (so also on assignment): a band threshold ``"10"``
becomes ``10``, ``"0.01x"`` stays a relative spec, a bad value raises ``ValueError``
naming the option.

:class:`Features` computes, at most once per instance, every feature of a pool that the
strategies need: embeddings, token ids, raw tags, the type incidences, the pruning pass
and the kNN graph, through typed accessors. It holds the one seed of these computations.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from tritondiv.families import (
    COMPONENTS,
    TOPIC_METHODS,
    TYPE_FAMILIES,
    default_topics,
    macro_types,
    meso_types,
    micro_types,
    parse_band_value,
    parse_family,
    resolve_band,
)
from tritondiv.incidence import Incidence

__all__ = [
    "G_FUNCTIONS",
    "KNN_METHODS",
    "SAMPLERS",
    "STRATIFY",
    "TYPELESS_RULES",
    "FeatureOptions",
    "Features",
    "check_quality",
    "load_graph",
    "load_quality",
    "make_tagger",
    "parse_length_band",
]

#: Concave functions of the balanced greedy (:func:`tritondiv.select.balanced_greedy`).
G_FUNCTIONS: tuple[str, ...] = ("log1p", "sqrt", "min")
#: Samplers of the type strategies: the balanced greedy, or the paper's uniform sampler
#: (:func:`tritondiv.select.uniform_types`).
SAMPLERS: tuple[str, ...] = ("greedy", "uniform")
#: What a type strategy does with samples that carry no type of its family.
TYPELESS_RULES: tuple[str, ...] = ("exclude", "include")
#: Stratification of the selection (``None``: none).
STRATIFY: tuple[str, ...] = ("source",)
#: How the facility-location kNN graph is built (:func:`tritondiv.kernels.knn_graph`).
KNN_METHODS: tuple[str, ...] = ("exact", "ivf", "auto")

_T = TypeVar("_T")


def _opt(default: Any, help: str, **cli: Any) -> Any:
    """A field with its default, its help text and its argparse spelling (``cli``)."""
    return field(default=default, metadata={"help": help, "cli": cli})


@dataclass
class FeatureOptions:
    """Every option that shapes the features and the selection (recorded in manifests).

    Each field's help text is in its metadata (``fields(FeatureOptions)``); the command
    line offers each as ``--<name-with-dashes>`` (``cache``/``progress``: ``--no-cache``,
    ``--no-progress``). ``lo``/``hi`` keep an ``int`` count or an ``"Fx"`` string
    (F times the pool size, see :func:`tritondiv.stats.resolve_band`); ``progress=None``
    shows bars only when stderr is a terminal, ``True`` forces them.
    """

    embeddings_instruction: str | None = _opt(
        None,
        "precomputed instruction embeddings (.npy, one row per pool sample)",
        metavar="NPY",
    )
    embeddings_response: str | None = _opt(
        None,
        "precomputed response embeddings (.npy, one row per pool sample)",
        metavar="NPY",
    )
    embedding_model: str | None = _opt(
        None,
        "local sentence-transformers model directory (default: the packaged all-MiniLM-L6-v2)",
        metavar="DIR",
    )
    tokenizer: str | None = _opt(
        None,
        "micro tokenizer: the tokenizer of the model to be fine-tuned (tokenizer.json or its "
        "directory, or the names smollm2, minilm, whitespace; default: the packaged "
        "SmolLM2-135M one)",
        metavar="PATH",
    )
    tagger: str = _opt(
        "keyphrase",
        "meso tagger: keyphrase (offline default), column:FIELD (a list field of the pool) "
        "or llm:PATH (a local causal LM directory or .gguf file)",
        metavar="SPEC",
    )
    tag_max_words: int | None = _opt(
        None,
        "keyphrase tagger: candidate phrases from the first N words of each text "
        "(default 128; smaller is faster)",
        metavar="N",
        type=int,
    )
    lo: int | str = _opt(
        10,
        "micro band: drop tokens seen fewer than LO times over the pool's component: an "
        "occurrence count, or 'Fx' = F times the number of samples (a relative lo rounds up)",
        metavar="COUNT|Fx",
    )
    hi: int | str = _opt(
        500,
        "micro band: drop tokens seen more than HI times; same syntax as --lo (a relative "
        "hi rounds down)",
        metavar="COUNT|Fx",
    )
    topics: int | None = _opt(
        None, "macro topics K (default round(sqrt(N)))", metavar="K", type=int
    )
    topic_method: str = _opt(
        "kmeans",
        "macro clustering: spherical k-means or HDBSCAN (small pools)",
        choices=TOPIC_METHODS,
    )
    component: str = _opt(
        "response",
        "component of the embedding baselines kcenter/facility-location/threshold/random",
        choices=COMPONENTS,
    )
    knn: int = _opt(20, "neighbours of the facility-location graph", type=int)
    knn_method: str = _opt(
        "exact",
        "facility-location kNN graph: exact, ivf (approximate, large pools) or auto",
        choices=KNN_METHODS,
    )
    nprobe: int | None = _opt(
        None,
        "ivf kNN graph: lists probed per query (default: the kernel's)",
        metavar="N",
        type=int,
    )
    graph: str | None = _opt(
        None,
        "a precomputed N x N similarity graph (scipy .npz CSR) for facility location, "
        "instead of the kNN graph",
        metavar="NPZ",
    )
    sampler: str = _opt(
        "greedy",
        "type strategies: greedy (balanced greedy, sum_t g(c_t)) or uniform (the paper's "
        "sampler: round-robin over the k types of S_k)",
        choices=SAMPLERS,
    )
    typeless: str = _opt(
        "exclude",
        "type strategies: samples carrying no type of the family are not candidates "
        "(exclude) or are (include)",
        choices=TYPELESS_RULES,
    )
    length_band: str | None = _opt(
        None,
        "keep only candidates whose response has LO to HI tokens (micro tokenizer, both "
        "inclusive; LO: or :HI open), for every strategy, before pruning",
        metavar="LO:HI",
    )
    stratify: str | None = _opt(
        None,
        "source: every dataset keeps the candidates' source mix (per-source quotas by "
        "largest remainder, each selected within its source)",
        choices=STRATIFY,
    )
    tau: float = _opt(0.9, "cosine threshold of the threshold baseline", type=float)
    quality: str | None = _opt(
        None,
        "per-sample quality scores (DEITA's score, then diversity): a .npy of one finite float "
        "per pool sample, or the name of a numeric field of the pool's records; the deita "
        "strategy walks the samples by descending quality, facility-location and the type "
        "strategies (sampler greedy) weight their gains by it (scores must then be >= 0)",
        metavar="NPY|FIELD",
    )
    g: str = _opt("log1p", "concave function of the balanced greedy", choices=G_FUNCTIONS)
    cache: bool = _opt(
        True,
        "do not read or write the feature cache",
        flag="--no-cache",
        action="store_false",
    )
    progress: bool | None = _opt(
        None,
        "hide progress bars (shown when stderr is a terminal)",
        flag="--no-progress",
        action="store_const",
        const=False,
    )

    def __setattr__(self, name: str, value: Any) -> None:
        normalize = _NORMALIZE.get(name)
        super().__setattr__(name, value if normalize is None else normalize(value))

    def __post_init__(self) -> None:
        if isinstance(self.lo, int) and isinstance(self.hi, int) and self.lo > self.hi:
            raise ValueError(
                f"lo (--lo) {self.lo} is above hi (--hi) {self.hi}: the micro band would be "
                "empty; pass --lo below --hi"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> FeatureOptions:
        """Options from a manifest's ``options`` (unknown keys are refused)."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"unknown options {unknown}: known are {sorted(names)}")
        return cls(**values)


# ---- normalization, one function per option kind --------------------------------------------


def _flag(name: str) -> str:
    return f"{name} (--{name.replace('_', '-')})"


def _optional_path(name: str) -> Callable[[Any], str | None]:
    def norm(value: Any) -> str | None:
        if value is None:
            return None
        if isinstance(value, Path):
            return str(value)
        if not isinstance(value, str):
            raise TypeError(f"{_flag(name)}: expected a path string, got {type(value).__name__}")
        return value

    return norm


def _integer(name: str, minimum: int, optional: bool) -> Callable[[Any], int | None]:
    def norm(value: Any) -> int | None:
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{_flag(name)}: expected an int, got {value!r}")
        if int(value) < minimum:
            raise ValueError(f"{_flag(name)} must be >= {minimum}, got {value}")
        return int(value)

    return norm


def _choice(name: str, choices: tuple[str, ...]) -> Callable[[Any], str]:
    def norm(value: Any) -> str:
        if value not in choices:
            raise ValueError(f"{_flag(name)} must be one of {choices}, got {value!r}")
        return str(value)

    return norm


def _band(name: str) -> Callable[[Any], int | str]:
    def norm(value: Any) -> int | str:
        try:
            out = parse_band_value(value)
        except ValueError as exc:
            raise ValueError(f"{_flag(name)}: {exc}") from None
        except TypeError as exc:
            raise TypeError(f"{_flag(name)}: {exc}") from None
        return out if isinstance(out, str) else int(out)

    return norm


def _tagger(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{_flag('tagger')}: expected a string, got {type(value).__name__}")
    ok = value == "keyphrase" or any(
        value.startswith(p) and len(value) > len(p) for p in ("column:", "llm:")
    )
    if not ok:
        raise ValueError(
            f"{_flag('tagger')} {value!r} is unknown: pass keyphrase, column:FIELD or llm:PATH"
        )
    return value


def _tau(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        raise TypeError(f"{_flag('tau')}: expected a float, got {value!r}")
    tau = float(value)
    if not (math.isfinite(tau) and -1.0 <= tau <= 1.0):
        raise ValueError(f"{_flag('tau')} is a cosine similarity: pass -1 <= tau <= 1, got {value}")
    return tau


def parse_length_band(value: Any) -> tuple[int, int | None] | None:
    """``"LO:HI"`` -> ``(LO, HI)`` response tokens, both inclusive; ``"LO:"`` -> ``(LO, None)``
    (no upper bound), ``":HI"`` -> ``(0, HI)``; ``None`` -> ``None``. A pair is accepted too.
    """
    if value is None:
        return None
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"length band {value!r}: pass two bounds (LO, HI)")
        parts = ["" if v is None else str(v) for v in value]
    elif isinstance(value, str):
        if value.count(":") != 1:
            raise ValueError(f"length band {value!r}: pass LO:HI (response tokens), e.g. 300:700")
        parts = [t.strip() for t in value.split(":")]
    else:
        raise TypeError(f"length band: expected a 'LO:HI' string, got {type(value).__name__}")
    try:
        lo = int(parts[0]) if parts[0] else 0
        hi = int(parts[1]) if parts[1] else None
    except ValueError:
        raise ValueError(
            f"length band {value!r}: LO and HI must be whole token counts, e.g. 300:700"
        ) from None
    if lo < 0 or (hi is not None and hi < lo):
        raise ValueError(f"length band {value!r}: need 0 <= LO <= HI")
    return lo, hi


def _length_band(value: Any) -> str | None:
    try:
        band = parse_length_band(value)
    except ValueError as exc:
        raise ValueError(f"{_flag('length_band')}: {exc}") from None
    except TypeError as exc:
        raise TypeError(f"{_flag('length_band')}: {exc}") from None
    if band is None:
        return None
    return f"{band[0]}:{'' if band[1] is None else band[1]}"


def _optional_choice(name: str, choices: tuple[str, ...]) -> Callable[[Any], str | None]:
    def norm(value: Any) -> str | None:
        if value is None:
            return None
        return _choice(name, choices)(value)

    return norm


def _boolean(name: str, optional: bool) -> Callable[[Any], bool | None]:
    def norm(value: Any) -> bool | None:
        if value is None and optional:
            return None
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{_flag(name)}: expected a bool, got {value!r}")
        return bool(value)

    return norm


_NORMALIZE: dict[str, Callable[[Any], Any]] = {
    "embeddings_instruction": _optional_path("embeddings_instruction"),
    "embeddings_response": _optional_path("embeddings_response"),
    "embedding_model": _optional_path("embedding_model"),
    "tokenizer": _optional_path("tokenizer"),
    "tagger": _tagger,
    "tag_max_words": _integer("tag_max_words", 1, optional=True),
    "lo": _band("lo"),
    "hi": _band("hi"),
    "topics": _integer("topics", 1, optional=True),
    "topic_method": _choice("topic_method", TOPIC_METHODS),
    "component": _choice("component", COMPONENTS),
    "knn": _integer("knn", 1, optional=False),
    "knn_method": _choice("knn_method", KNN_METHODS),
    "nprobe": _integer("nprobe", 1, optional=True),
    "graph": _optional_path("graph"),
    "sampler": _choice("sampler", SAMPLERS),
    "typeless": _choice("typeless", TYPELESS_RULES),
    "length_band": _length_band,
    "stratify": _optional_choice("stratify", STRATIFY),
    "tau": _tau,
    "quality": _optional_path("quality"),
    "g": _choice("g", G_FUNCTIONS),
    "cache": _boolean("cache", optional=False),
    "progress": _boolean("progress", optional=True),
}


def make_tagger(
    spec: str,
    *,
    embedding_model: str | None = None,
    progress: bool = True,
    max_words: int | None = None,
) -> Any:
    """Build a tagger from ``keyphrase``, ``column:FIELD`` or ``llm:PATH``.

    ``max_words``: the keyphrase tagger draws candidate phrases from the first
    ``max_words`` words of each text (its default when ``None``).
    """
    from tritondiv import features as F

    if spec == "keyphrase":
        kwargs: dict[str, Any] = {} if max_words is None else {"max_words": int(max_words)}
        return F.KeyphraseTagger(model=embedding_model, progress=progress, **kwargs)
    if spec.startswith("column:") and len(spec) > len("column:"):
        return F.ColumnTagger(spec.split(":", 1)[1])
    if spec.startswith("llm:") and len(spec) > len("llm:"):
        path = Path(spec.split(":", 1)[1])
        if path.is_file() and path.suffix == ".gguf":
            return F.LLMTagger(str(path.parent), gguf_file=path.name, progress=progress)
        if path.is_dir():
            return F.LLMTagger(str(path), progress=progress)
        raise ValueError(
            f"tagger {spec!r}: {path} is neither a model directory nor a .gguf file: pass "
            "llm:DIR or llm:FILE.gguf"
        )
    raise ValueError(f"tagger {spec!r} is unknown: pass keyphrase, column:FIELD or llm:PATH")


def load_graph(path: str | Path, n_samples: int) -> Any:
    """A user's similarity graph: a scipy sparse ``.npz`` (``scipy.sparse.save_npz``), CSR,
    ``n_samples x n_samples``, finite non-negative similarities."""
    import scipy.sparse as sp  # type: ignore[import-untyped]

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"graph (--graph) {p}: no such file")
    try:
        G = sp.load_npz(p)
    except (ValueError, OSError, KeyError) as exc:
        raise ValueError(
            f"graph (--graph) {p}: not a scipy sparse .npz (scipy.sparse.save_npz): {exc}"
        ) from None
    if G.shape != (n_samples, n_samples):
        raise ValueError(
            f"graph (--graph) {p}: shape {G.shape}, expected ({n_samples}, {n_samples}) "
            "(one row and column per pool sample)"
        )
    G = G.tocsr().astype(np.float32)
    if G.nnz and (not np.all(np.isfinite(G.data)) or G.data.min() < 0):
        raise ValueError(f"graph (--graph) {p}: similarities must be finite and >= 0")
    return G


def check_quality(values: Any, n_samples: int, what: str = "quality") -> np.ndarray:
    """``float64[n_samples]`` quality scores from an array-like, checked: 1-D, one finite
    number per pool sample (``what`` names the argument or file in the errors)."""
    try:
        q = np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(
            f"{what}: expected one number per pool sample, got {type(values).__name__}"
        ) from None
    if q.ndim != 1 or q.size != n_samples:
        raise ValueError(
            f"{what}: {q.size} scores of shape {q.shape} for a pool of {n_samples} samples; "
            "pass one score per pool sample, in pool order"
        )
    bad = np.flatnonzero(~np.isfinite(q))
    if bad.size:
        raise ValueError(
            f"{what}: {bad.size} scores are NaN or inf (first: sample {int(bad[0])}); pass "
            "finite scores"
        )
    return q


def load_quality(spec: str | Path, pool: Any) -> np.ndarray:
    """The option ``quality``: a ``.npy`` file (one score per pool sample) or the name of a
    numeric field of every record (:meth:`tritondiv.pool.Pool.column`), checked."""
    p = Path(spec)
    if p.suffix == ".npy" or p.is_file():
        if not p.is_file():
            raise FileNotFoundError(f"quality (--quality) {p}: no such file")
        try:
            values = np.load(p, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise ValueError(f"quality (--quality) {p}: not a .npy array: {exc}") from None
        return check_quality(values, len(pool), f"quality (--quality) {p}")
    column = getattr(pool, "column", None)
    if column is None:
        raise ValueError(
            f"quality (--quality) {spec!r}: not a .npy file, and this pool "
            f"({type(pool).__name__}) has no record fields; pass a .npy path or an array"
        )
    values = column(str(spec))
    try:
        return check_quality(values, len(pool), f"quality (--quality) field {str(spec)!r}")
    except TypeError:
        raise TypeError(
            f"quality (--quality) field {str(spec)!r}: its values are not all numbers"
        ) from None


def _check_component(component: str) -> None:
    if component not in COMPONENTS:
        raise ValueError(f"component must be one of {COMPONENTS}, got {component!r}")


class Features:
    """Lazily computed, in-memory cached features and incidences of one pool.

    Every feature is computed at most once per instance (the featurizers also cache on
    disk), so a ladder over many strategies and levels featurizes each component once.
    ``seed`` is the one seed of the seeded computations (topics, pruning) and the default
    seed of the strategies run on these features. ``timings`` records the seconds spent
    per stage; ``on_stage``, when set, receives each stage's name (``"embed response"``,
    ``"types response-micro"``) as it starts (the ladder shows it in its progress bar).
    """

    def __init__(self, pool: Any, options: FeatureOptions | None = None, *, seed: int = 0) -> None:
        if options is not None and not isinstance(options, FeatureOptions):
            raise TypeError(f"options must be a FeatureOptions, got {type(options).__name__}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise TypeError(f"seed must be an int, got {seed!r}")
        self.pool = pool
        self.options = options or FeatureOptions()
        self.seed = int(seed)
        self.timings: dict[str, float] = {}
        self.on_stage: Callable[[str], None] | None = None
        self._embeddings: dict[str, np.ndarray] = {}
        self._tokens: dict[str, Any] = {}
        self._tokenizer: list[Any] = []
        self._tags: dict[str, list[list[str]]] = {}
        self._tag_reports: dict[str, Any] = {}
        self._incidences: dict[str, Incidence] = {}
        self._prunings: dict[str, Any] = {}
        self._knn: dict[str, Any] = {}
        self._tokenizer_id: list[dict[str, Any]] = []
        self._quality: list[np.ndarray | None] = []

    @property
    def n_samples(self) -> int:
        return len(self.pool)

    @property
    def progress(self) -> bool:
        """Whether to show progress bars: the option, or (``None``) whether stderr is a tty;
        never after ``tritondiv -q`` (:func:`tritondiv._log.progress_enabled`)."""
        from tritondiv._log import progress_enabled

        return progress_enabled(self.options.progress)

    def _timed(self, store: dict[str, _T], key: str, stage: str, fn: Callable[[], _T]) -> _T:
        if key not in store:
            if self.on_stage is not None:
                self.on_stage(stage.replace("-", " ", 1))
            t0 = time.perf_counter()
            store[key] = fn()
            self.timings[stage] = self.timings.get(stage, 0.0) + time.perf_counter() - t0
        return store[key]

    # ---- what is computed already ---------------------------------------------------------
    def has_embeddings(self, component: str) -> bool:
        return component in self._embeddings

    def has_tokens(self, component: str) -> bool:
        return component in self._tokens

    def computed_families(self) -> list[str]:
        """The type families whose incidence is computed, in :data:`TYPE_FAMILIES` order."""
        return [f for f in TYPE_FAMILIES if f in self._incidences]

    # ---- raw features -----------------------------------------------------------------
    def embeddings(self, component: str) -> np.ndarray:
        """``float32[N, d]`` L2-normalized embeddings of a component: read-only, memory-mapped
        from the cache (or the user's normalized float32 ``.npy``), never copied whole."""
        _check_component(component)

        def compute() -> np.ndarray:
            from tritondiv.features import embed_pool

            pre = getattr(self.options, f"embeddings_{component}")
            X = embed_pool(
                self.pool,
                component,
                self.options.embedding_model,
                precomputed=pre,
                cache=self.options.cache,
                progress=self.progress,
            )
            return np.ascontiguousarray(X, dtype=np.float32)

        return self._timed(self._embeddings, component, f"embed-{component}", compute)

    def tokens(self, component: str) -> Any:
        """The component's token ids (:class:`tritondiv.tokens.TokenCSR`), memory-mapped from
        the cache (in memory with ``cache=False``)."""
        _check_component(component)

        def compute() -> Any:
            from tritondiv.tokens import tokenize_pool

            return tokenize_pool(
                self.pool,
                component,
                self.tokenizer(),
                cache=self.options.cache,
                progress=self.progress,
            )

        return self._timed(self._tokens, component, f"tokenize-{component}", compute)

    def tokenizer(self) -> Any:
        """The tokenizer of :attr:`FeatureOptions.tokenizer` (loaded once)."""
        if not self._tokenizer:
            from tritondiv.tokens import load_tokenizer

            if self.on_stage is not None:
                self.on_stage("load tokenizer")
            t0 = time.perf_counter()
            self._tokenizer.append(load_tokenizer(self.options.tokenizer))
            self.timings["load-tokenizer"] = time.perf_counter() - t0
        return self._tokenizer[0]

    def tags(self, component: str) -> list[list[str]]:
        """Raw tags per sample of a component (the configured tagger)."""
        _check_component(component)

        def compute() -> list[list[str]]:
            from tritondiv.features import tag_pool

            tagger = make_tagger(
                self.options.tagger,
                embedding_model=self.options.embedding_model,
                progress=self.progress,
                max_words=self.options.tag_max_words,
            )
            return tag_pool(self.pool, component, tagger, cache=self.options.cache)

        return self._timed(self._tags, component, f"tag-{component}", compute)

    def band(self, component: str = "response") -> tuple[int, int]:
        """Absolute micro band ``(lo, hi)`` for this pool (the same for both components)."""
        return resolve_band(self.options.lo, self.options.hi, self.n_samples)

    def tokenizer_identity(self) -> dict[str, Any]:
        """What the manifests record about the micro tokenizer (:func:`tokenizer_identity`)."""
        if not self._tokenizer_id:
            from tritondiv.tokens import tokenizer_identity

            self._tokenizer_id.append(tokenizer_identity(self.tokenizer()))
        return dict(self._tokenizer_id[0])

    def response_lengths(self) -> np.ndarray:
        """``int64[N]``: response length of every sample in micro-tokenizer tokens."""
        return np.diff(np.asarray(self.tokens("response").offsets, dtype=np.int64))

    def length_band(self) -> tuple[int, int | None] | None:
        """The option ``length_band`` as ``(lo, hi)`` (``hi`` ``None``: open), or ``None``."""
        return parse_length_band(self.options.length_band)

    def in_length_band(self) -> np.ndarray | None:
        """``bool[N]``: samples whose response length lies in the band (``None``: no band)."""
        band = self.length_band()
        if band is None:
            return None
        lengths = self.response_lengths()
        keep = lengths >= band[0]
        if band[1] is not None:
            keep &= lengths <= band[1]
        return keep

    # ---- types ------------------------------------------------------------------------
    def incidence(self, family: str) -> Incidence:
        """The incidence of a type family ``<component>-<macro|meso|micro>``."""
        component, level = parse_family(family)
        if family in self._incidences:  # computed or set: no raw features needed
            return self._incidences[family]
        stage = f"types-{family}"
        if level == "macro":
            X = self.embeddings(component)
            return self._timed(
                self._incidences,
                family,
                stage,
                lambda: macro_types(
                    X,
                    self.options.topics,
                    method=self.options.topic_method,
                    seed=self.seed,
                    progress=self.progress,
                ),
            )
        if level == "meso":
            tags = self.tags(component)

            def meso() -> Incidence:
                inc, report = meso_types(tags)
                self._tag_reports[component] = report
                return inc

            return self._timed(self._incidences, family, stage, meso)
        tokens = self.tokens(component)
        lo, hi = self.band(component)
        return self._timed(self._incidences, family, stage, lambda: micro_types(tokens, lo, hi))

    def tag_report(self, component: str) -> Any:
        """The :class:`~tritondiv.features.TagReport` of a component's meso types, once built."""
        return self._tag_reports.get(component)

    def n_topics(self) -> int:
        return self.options.topics or default_topics(self.n_samples)

    def pruning(self, family: str, rows: np.ndarray | None = None) -> Any:
        """The reverse greedy pruning of a type family (computed once, seeded).

        ``rows`` (ascending pool indices): the pruning of the incidence restricted to those
        rows (``incidence(family).subset(rows)``; its pools are indices into ``rows``).
        """
        inc = self.incidence(family)
        key = family
        if rows is not None:
            rows = np.ascontiguousarray(rows, dtype=np.int64)
            key = f"{family}:{rows.size}:{hashlib.sha1(rows.tobytes()).hexdigest()}"
            inc = inc.subset(rows)

        def compute() -> Any:
            from tritondiv.select import prune_types

            return prune_types(inc, seed=self.seed)

        return self._timed(self._prunings, key, f"prune-{family}", compute)

    def _knn_graph(self, X: np.ndarray) -> Any:
        """The facility-location graph: the option ``graph`` (checked N x N), or the kNN
        graph of ``X`` (``knn_method``, ``nprobe``)."""
        opts = self.options
        if opts.graph is not None:
            return load_graph(opts.graph, self.n_samples)
        from tritondiv.kernels import knn_graph

        # method/nprobe only when asked for (the IVF graph is newer than the exact one)
        extra: dict[str, Any] = {}
        if opts.knn_method != "exact" or opts.nprobe is not None:
            extra = {"method": opts.knn_method, "nprobe": opts.nprobe}
        return knn_graph(X, opts.knn, symmetrize=True, progress=self.progress, **extra)

    def knn(self, component: str) -> Any:
        """The kNN cosine-similarity graph (scipy CSR) of a component's embeddings."""
        X = self.embeddings(component)

        def compute() -> Any:
            return self._knn_graph(X)

        return self._timed(self._knn, component, f"knn-{component}", compute)

    def set_incidence(self, family: str, incidence: Incidence) -> None:
        """Use ``incidence`` as the family's types, computed elsewhere (e.g. on Ray).

        It must describe this pool's samples, in pool order; :meth:`incidence` then returns
        it instead of computing it. A family computed (or set) already cannot be replaced:
        its pruning and the selections made on it would no longer agree.
        """
        parse_family(family)
        try:
            incidence = Incidence.coerce(incidence)  # an Incidence, or a scipy.sparse matrix
        except TypeError:
            raise TypeError(
                f"set_incidence({family!r}): expected an Incidence or a scipy.sparse matrix, "
                f"got {type(incidence).__name__}"
            ) from None
        if incidence.n_samples != self.n_samples:
            raise ValueError(
                f"set_incidence({family!r}): the incidence has {incidence.n_samples} samples, "
                f"the pool {self.n_samples}"
            )
        if family in self._incidences:
            raise ValueError(f"set_incidence({family!r}): the family's types are computed already")
        self._incidences[family] = incidence

    def quality(self) -> np.ndarray | None:
        """``float64[N]`` per-sample quality scores (the option ``quality``, or the array
        given to :meth:`set_quality`), loaded and checked once; ``None`` when not given."""
        if not self._quality:
            spec = self.options.quality
            self._quality.append(None if spec is None else load_quality(spec, self.pool))
        return self._quality[0]

    def set_quality(self, values: Any, what: str = "quality") -> None:
        """Use ``values`` (one finite score per pool sample) as the quality scores."""
        if self.options.quality is not None or (self._quality and self._quality[0] is not None):
            raise ValueError("set_quality: the quality scores are set already; pass them once")
        self._quality[:] = [check_quality(values, self.n_samples, what)]
