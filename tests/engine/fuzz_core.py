"""Hypothesis fuzzer of every entry point of the compiled core, ``tritondiv._core``.

Not a test module (pytest does not collect it): ``test_core_fuzz.py`` runs it as a script,
bounded, and ``make fuzz`` runs it longer. Usage::

    python tests/engine/fuzz_core.py [--examples N] [--entries a,b] [--seed S] [--jobs J]
    python tests/engine/fuzz_core.py --replay FILE     # one saved input, alone
    python tests/engine/fuzz_core.py --list            # the entry points covered

Inputs: random shapes, dtypes (mostly the right one), non-contiguous strides, arrays that
are not arrays, CSR offsets that are valid or corrupted, huge and negative scalars, edge
values of n_types / k / n / vocab_size. The only allowed outcomes of a call are a normal
return or TypeError / ValueError / MemoryError / OverflowError / IndexError.

Each entry point runs in its own subprocess (N examples in a row); before each call the
input is written to a file, so when the subprocess dies (a signal, or a sanitizer report)
the parent reads the input that killed it, re-runs that input alone in a fresh process to
confirm it, and reports both, with the saved input file for ``--replay``. A disallowed
Python exception is reported by Hypothesis with its (shrunk) falsifying example.

Under AddressSanitizer (``TRITONDIV_FUZZ_SANITIZE=1``, or libasan in LD_PRELOAD) size
arguments that would make the core allocate gigabytes are left out: ASan aborts on a huge
allocation instead of raising MemoryError, and the address-space limit used otherwise
(RLIMIT_AS, which turns such allocations into MemoryError) does not work with ASan.
"""

from __future__ import annotations

import argparse
import os
import pickle
import shutil
import signal
import subprocess
import sys
import tempfile
import warnings
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ALLOWED = (TypeError, ValueError, MemoryError, OverflowError, IndexError)
SANITIZED = os.environ.get("TRITONDIV_FUZZ_SANITIZE") == "1" or "libasan" in os.environ.get(
    "LD_PRELOAD", ""
)
ADDRESS_LIMIT = 8 << 30  # bytes of address space per child (not under ASan)
DEFAULT_EXAMPLES = 50

I32 = (-(2**31), -1, 2**31 - 1)
I64 = (-(2**63), -(2**31) - 1, -1, 2**31 - 1, 2**31, 2**32, 2**62, 2**63 - 2, 2**63 - 1)
BEYOND_I64 = (2**63, 2**64, -(2**63) - 1)


# ---- inputs --------------------------------------------------------------------------


@dataclass(frozen=True)
class Arr:
    """An array argument: the values, and whether the call gets a non-contiguous view."""

    data: np.ndarray
    strided: bool = False

    def build(self) -> Any:
        if not self.strided or self.data.ndim == 0:
            return self.data.copy()
        shape = (self.data.shape[0] * 2, *self.data.shape[1:])
        buf = np.zeros(shape, dtype=self.data.dtype)
        buf[::2] = self.data
        return buf[::2]

    def __repr__(self) -> str:
        body = np.array2string(self.data, threshold=64, max_line_width=10**6)
        body = body.replace("\n", "")
        s = " strided" if self.strided else ""
        return f"Arr({self.data.dtype}{list(self.data.shape)}{s}: {body})"


def build(arg: Any) -> Any:
    return arg.build() if isinstance(arg, Arr) else arg


def _strategies() -> dict[str, Any]:
    """Hypothesis strategies of the arguments of every entry point (built lazily)."""
    from hypothesis import strategies as st

    # Two of three examples are "clean": right dtypes and shapes, valid CSR, in-range ids
    # and small non-negative scalars, so the kernels' inner paths run (not just the
    # argument checks); the others perturb every argument. The flag is drawn first by each
    # entry point's strategy and read by the helpers below while that example is drawn.
    mode = {"clean": False}

    def entry(fn: Any) -> Any:
        @st.composite
        def drawn(draw: Any) -> Any:
            mode["clean"] = draw(st.integers(0, 2)) > 0
            return fn(draw)

        return drawn

    def either(clean: Any, dirty: Any) -> Any:
        @st.composite
        def pick(draw: Any) -> Any:
            return draw(clean if mode["clean"] else dirty)

        return pick()

    small = st.integers(-3, 12)

    def ints(edges: tuple[int, ...] = I64, lo: int = -3, hi: int = 12) -> Any:
        dirty = st.one_of(st.integers(lo, hi), st.sampled_from(edges + BEYOND_I64))
        return either(st.integers(max(lo, 0), hi), dirty)

    # sizes that make the core allocate in proportion: no huge ones under ASan
    if SANITIZED:
        size_edges: tuple[int, ...] = (-(2**63), -(2**31), -1, 2**63 - 1)
        vocab_edges: tuple[int, ...] = (-(2**31), -1)
    else:
        size_edges = (-(2**63), -(2**31), -1, 2**31 - 1, 2**31, 2**62, 2**63 - 1)
        vocab_edges = (*I32, 2**30)
    sizes = ints(size_edges, 0, 8)
    # values of int64 arrays
    i64v = either(st.integers(0, 12), st.one_of(st.integers(-3, 12), st.sampled_from(I64)))
    vocab = either(
        st.integers(10, 12),
        st.one_of(st.integers(-1, 10), st.sampled_from((*vocab_edges, 2**31, 2**40))),
    )
    f32 = st.floats(width=32, allow_nan=True, allow_infinity=True)
    f64 = st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True)
    fin64 = st.floats(0, 10)
    other_dtypes = (np.int32, np.int64, np.float32, np.float64, np.float16, np.uint8, np.bool_)

    @st.composite
    def array(
        draw: Any, dtype: Any, ndim: int, values: Any, shape: tuple[int, ...] | None = None
    ) -> Any:
        if shape is None:
            shape = tuple(draw(st.integers(0, 6)) for _ in range(ndim))
        size = int(np.prod(shape))
        data = np.array(draw(st.lists(values, min_size=size, max_size=size)), dtype=dtype)
        data = data.reshape(shape)
        kinds = ["ok"] * 6 + ["strided", "dtype", "ndim", "list", "none"]
        kind = "ok" if mode["clean"] else draw(st.sampled_from(kinds))
        if kind == "strided" and data.ndim >= 1 and data.shape[0] > 0:
            return Arr(data, strided=True)
        if kind == "dtype":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return Arr(data.astype(draw(st.sampled_from(other_dtypes))))
        if kind == "ndim":
            return Arr(data.reshape(-1) if data.ndim != 1 else data.reshape(1, -1))
        if kind == "list":
            return data.tolist()
        if kind == "none":
            return None
        return Arr(data)

    @st.composite
    def csr(draw: Any, values: Any, rows: int = 6) -> Any:
        lens = draw(st.lists(st.integers(0, 7), max_size=rows))
        off = np.concatenate([[0], np.cumsum(lens, dtype=np.int64)]).astype(np.int64)
        hows = ["ok"] * 3 + ["random", "decrease", "last", "first", "empty"]
        how = "ok" if mode["clean"] else draw(st.sampled_from(hows))
        if how == "random":
            off = np.array(draw(st.lists(i64v, min_size=1, max_size=6)), dtype=np.int64)
        elif how == "decrease" and off.size > 2:
            off[1], off[2] = off[2] + 1, off[1]
        elif how == "last":
            off[-1] += draw(st.sampled_from([-1, 1, 2**40]))
        elif how == "first":
            off[0] = draw(st.sampled_from([-1, 1, 2**62]))
        elif how == "empty":
            off = np.zeros(0, np.int64)
        nnz = int(np.clip(off[-1], 0, 64)) if off.size else 0
        if how != "ok":
            nnz = draw(st.integers(0, max(nnz, 8)))
        offsets = draw(array(np.int64, 1, st.just(0), shape=off.shape))
        if isinstance(offsets, Arr) and offsets.data.dtype == np.int64 and offsets.data.ndim == 1:
            offsets = Arr(off, offsets.strided)
        vals = draw(array(np.int32, 1, values, shape=(nnz,)))
        return offsets, vals

    ids = either(st.integers(0, 9), st.one_of(st.integers(0, 9), st.sampled_from(I32)))
    seeds = either(
        st.integers(0, 5), st.one_of(st.integers(0, 5), st.sampled_from((2**64 - 1, -1, 2**64)))
    )
    bias = st.one_of(st.none(), array(np.float32, 1, f32))

    def rows_state(draw: Any) -> tuple[Any, Any]:
        n, k = draw(st.integers(0, 6)), draw(st.sampled_from([0, 1, 2, 3, 17, 40]))
        vals = draw(array(np.float32, 2, st.one_of(st.just(-np.inf), f32), shape=(n, k)))
        ids_ = draw(array(np.int64, 2, st.one_of(st.just(2**63 - 1), i64v), shape=(n, k)))
        return vals, ids_

    @entry
    def token_counts(draw: Any) -> tuple[Any, ...]:
        return (*draw(csr(ids)), draw(vocab))

    @entry
    def band_incidence(draw: Any) -> tuple[Any, ...]:
        off, v = draw(csr(ids))
        vs = draw(vocab)
        m = draw(st.one_of(st.just(vs), st.integers(0, 8))) if 0 <= vs <= 64 else draw(small)
        if mode["clean"]:
            m = vs
            lo = draw(st.integers(1, 3))
            return off, v, vs, draw(array(np.int64, 1, i64v, shape=(m,))), lo, lo + draw(small)
        counts = draw(array(np.int64, 1, i64v, shape=(max(m, 0),)))
        return off, v, vs, counts, draw(ints()), draw(ints())

    @entry
    def distinct_ngrams(draw: Any) -> tuple[Any, ...]:
        off, v = draw(csr(ids))
        vs = draw(vocab)
        if mode["clean"]:
            counts = draw(st.one_of(st.none(), array(np.int64, 1, i64v, shape=(vs,))))
            return off, v, vs, draw(st.integers(1, 4)), counts
        counts = draw(st.one_of(st.none(), array(np.int64, 1, i64v)))
        return off, v, vs, draw(ints((*I32, 2**31), -1, 6)), counts

    @entry
    def distinct_ngrams_per_sample(draw: Any) -> tuple[Any, ...]:
        off, v = draw(csr(ids))
        n = draw(st.integers(1, 4) if mode["clean"] else ints((*I32, 2**31), -1, 6))
        return off, v, draw(vocab), n

    @entry
    def entropy_nats(draw: Any) -> tuple[Any, ...]:
        return (draw(array(np.int64, 1, i64v)),)

    @entry
    def ngram_key(draw: Any) -> tuple[Any, ...]:
        shape = (draw(st.integers(1, 4)),) if mode["clean"] else None
        return (draw(array(np.int32, 1, ids, shape=shape)),)

    @entry
    def topk_merge_block(draw: Any) -> tuple[Any, ...]:
        g = draw(array(np.float32, 2, f32))
        vals, ids_ = rows_state(draw)
        row0, col0 = draw(ints()), draw(ints())
        cb, rb = draw(bias), draw(bias)
        if mode["clean"]:  # a block inside the state: rows first, columns after them
            n = vals.data.shape[0]
            r = draw(st.integers(0, n))
            c = draw(st.integers(0, n - r))
            row0, col0 = draw(st.integers(0, n - r)), draw(st.integers(0, 4))
            if draw(st.booleans()):
                col0 = row0 + r + draw(st.integers(0, n - r - row0 - c)) if n - r - row0 >= c else 0
            g = Arr(np.array(draw(st.lists(f32, min_size=r * c, max_size=r * c)), np.float32)
                    .reshape(r, c))  # fmt: skip
            cb = draw(st.one_of(st.none(), array(np.float32, 1, f32, shape=(c,))))
            rb = draw(st.one_of(st.none(), array(np.float32, 1, f32, shape=(r,))))
        return (
            g, row0, col0, draw(f32), cb, rb, draw(st.booleans()), draw(st.booleans()), vals, ids_,
        )  # fmt: skip

    @entry
    def topk_finalize(draw: Any) -> tuple[Any, ...]:
        return rows_state(draw)

    @entry
    def argmax_merge_rows(draw: Any) -> tuple[Any, ...]:
        g = draw(array(np.float32, 2, f32))
        n = draw(st.integers(0, 8))
        bv = draw(array(np.float32, 1, st.one_of(st.just(-np.inf), f32), shape=(n,)))
        bi = draw(array(np.int64, 1, i64v, shape=(n,)))
        row0, col0, b = draw(ints()), draw(ints()), draw(bias)
        if mode["clean"] and isinstance(g, Arr):
            r, c = g.data.shape
            n = max(n, r)
            bv = draw(array(np.float32, 1, st.one_of(st.just(-np.inf), f32), shape=(n,)))
            bi = draw(array(np.int64, 1, i64v, shape=(n,)))
            row0 = draw(st.integers(0, n - r))
            b = draw(st.one_of(st.none(), array(np.float32, 1, f32, shape=(c,))))
        return g, row0, col0, draw(f32), b, bv, bi

    @entry
    def prune_types(draw: Any) -> tuple[Any, ...]:
        off, ty = draw(csr(ids))
        return off, ty, 10 if mode["clean"] else draw(sizes), draw(seeds)

    @entry
    def balanced_greedy(draw: Any) -> tuple[Any, ...]:
        off, ty = draw(csr(ids))
        if mode["clean"] and isinstance(off, Arr):
            rows = off.data.size - 1
            cand = draw(st.permutations(range(rows)))[: draw(st.integers(0, rows))]
            w = draw(st.one_of(st.just([]), st.lists(fin64, min_size=rows, max_size=rows)))
            eps = draw(st.one_of(st.just(0.0), st.floats(1e-300, 0.99)))
            return (
                off, ty, 10, Arr(np.array(cand, np.int64)), draw(st.integers(0, len(cand))),
                draw(st.integers(0, 2)), draw(st.floats(1, 4)), Arr(np.array(w, np.float64)),
                eps, draw(seeds),
            )  # fmt: skip
        cand = draw(array(np.int64, 1, st.one_of(st.integers(0, 6), st.sampled_from(I64))))
        w = draw(array(np.float64, 1, st.one_of(fin64, f64)))
        eps = draw(st.one_of(st.just(0.0), st.floats(0, 1), f64, st.just(5e-324)))
        return (
            off, ty, draw(sizes), cand, draw(ints()), draw(ints(I32, -1, 3)), draw(f64), w,
            eps, draw(seeds),
        )  # fmt: skip

    @entry
    def kcenter_greedy(draw: Any) -> tuple[Any, ...]:
        dt = draw(st.sampled_from([np.float32, np.float16]))
        vals = f32 if dt == np.float32 else st.floats(width=16)
        if mode["clean"]:
            shape = (draw(st.integers(1, 12)), draw(st.integers(1, 9)))
            x = draw(array(dt, 2, vals, shape=shape))
            return x, draw(st.integers(1, shape[0])), draw(st.integers(0, shape[0] - 1))
        return draw(array(dt, 2, vals)), draw(ints()), draw(ints())

    @entry
    def facility_location_csr(draw: Any) -> tuple[Any, ...]:
        ip, ix = draw(csr(ids))
        nnz = ix.data.size if isinstance(ix, Arr) else 0
        if mode["clean"] and isinstance(ip, Arr):
            data = draw(array(np.float64, 1, fin64, shape=(nnz,)))
            return ip, ix, data, 10, draw(st.integers(0, ip.data.size - 1))
        data = draw(array(np.float64, 1, st.one_of(fin64, f64), shape=(nnz,)))
        return ip, ix, data, draw(sizes), draw(ints())

    @entry
    def facility_location_dense(draw: Any) -> tuple[Any, ...]:
        if mode["clean"]:
            g = draw(array(np.float64, 2, fin64))
            return g, draw(st.integers(0, g.data.shape[0]))
        return draw(array(np.float64, 2, st.one_of(fin64, f64))), draw(ints())

    @entry
    def threshold_filter(draw: Any) -> tuple[Any, ...]:
        x = draw(array(np.float32, 2, f32))
        if mode["clean"]:
            rows = x.data.shape[0]
            order = Arr(np.array(draw(st.lists(st.integers(0, max(rows - 1, 0)))), np.int64))
            if rows == 0:
                order = Arr(np.zeros(0, np.int64))
            return x, draw(st.integers(0, 8)), draw(st.floats(-1, 1)), order
        order = draw(array(np.int64, 1, st.one_of(st.integers(0, 6), st.sampled_from(I64))))
        return x, draw(ints()), draw(f64), order

    @entry
    def set_num_threads(draw: Any) -> tuple[Any, ...]:
        return (draw(st.one_of(st.integers(-2, 300), st.sampled_from(I64 + BEYOND_I64))),)

    @entry
    def _selfcheck_crash(draw: Any) -> tuple[Any, ...]:
        return (draw(st.integers(0, 10)),)

    made = locals()
    return {name: made[name]() for name in (*_ENTRIES, "_selfcheck_crash")}


# entry points fuzzed (every callable of tritondiv._core but the trivial getters)
_ENTRIES = (
    "token_counts", "band_incidence", "distinct_ngrams", "distinct_ngrams_per_sample",
    "entropy_nats", "ngram_key", "topk_merge_block", "topk_finalize", "argmax_merge_rows",
    "prune_types", "balanced_greedy", "kcenter_greedy", "facility_location_csr",
    "facility_location_dense", "threshold_filter", "set_num_threads",
)  # fmt: skip
NOT_FUZZED = ("num_threads", "max_threads")  # no arguments


def call(name: str, args: tuple[Any, ...]) -> str:
    """Run one input; return the outcome, or raise a disallowed exception."""
    if name == "_selfcheck_crash":  # the driver's own check: a real signal on inputs >= 5
        if args[0] >= 5:
            os.kill(os.getpid(), signal.SIGSEGV)
        return "returned"
    from tritondiv import _core

    fn = getattr(_core, name)
    try:
        fn(*[build(a) for a in args])
        if name == "set_num_threads":
            _core.num_threads()
    except ALLOWED as exc:
        if os.environ.get("TRITONDIV_FUZZ_VERBOSE") == "1":
            print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return type(exc).__name__
    return "returned"


# ---- child: N examples of one entry point ----------------------------------------------


def _limit_address_space() -> None:
    """Make huge allocations fail (MemoryError) instead of exhausting the machine."""
    if not SANITIZED:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_LIMIT, ADDRESS_LIMIT))


def run_child(name: str, examples: int, seed: int, last: Path) -> int:
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hseed

    _limit_address_space()
    strategy = _strategies()[name]
    outcomes: dict[str, int] = {}

    @hseed(seed)
    @settings(
        max_examples=examples,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.generate, Phase.shrink],
        print_blob=False,
    )
    @given(strategy)
    def check(args: tuple[Any, ...]) -> None:
        with open(last, "wb") as f:  # read back by the parent if this process dies
            pickle.dump((name, args), f)
        out = call(name, args)
        outcomes[out] = outcomes.get(out, 0) + 1

    try:
        check()
    except Exception as exc:  # a disallowed exception: Hypothesis printed the example
        print(f"DISALLOWED {name}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 3
    print(" ".join(f"{k}={v}" for k, v in sorted(outcomes.items())))
    return 0


def replay(path: Path) -> int:
    _limit_address_space()
    with open(path, "rb") as f:
        name, args = pickle.load(f)
    print(f"replaying {name}{tuple(args)!r}", flush=True)
    try:
        print("outcome:", call(name, args))
    except Exception as exc:
        print(f"outcome: disallowed {type(exc).__name__}: {exc}")
        return 3
    return 0


# ---- parent: one child per entry point ------------------------------------------------


def _describe_rc(rc: int) -> str:
    if rc < 0:
        try:
            return f"killed by {signal.Signals(-rc).name}"
        except ValueError:
            return f"killed by signal {-rc}"
    return f"exit status {rc}"


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("PYTHONFAULTHANDLER", "1")
    return env


def run_entry(name: str, examples: int, seed: int, work: Path, keep: Path) -> tuple[bool, str]:
    last = work / f"{name}.last.pkl"
    cmd = [sys.executable, __file__, "--child", name, "--examples", str(examples)]
    cmd += ["--seed", str(seed), "--last", str(last)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_child_env())
    if proc.returncode == 0:
        return True, f"{name}: {examples} examples ok ({proc.stdout.strip()})"
    tail = (proc.stdout + proc.stderr)[-4000:]
    if proc.returncode == 3:
        return False, f"{name}: disallowed exception\n{tail}"
    # died: name the input it was running, then re-run that input alone
    report = [f"{name}: child {_describe_rc(proc.returncode)}"]
    if last.exists():
        saved = keep / f"crash-{name}.pkl"
        shutil.copy(last, saved)
        with open(saved, "rb") as f:
            _, args = pickle.load(f)
        report.append(f"  input: {name}{tuple(args)!r}")
        again = subprocess.run(
            [sys.executable, __file__, "--replay", str(saved)],
            capture_output=True,
            text=True,
            env=_child_env(),
        )
        alone = "crashes alone too" if again.returncode != 0 else "does NOT crash alone"
        report.append(f"  replayed alone: {_describe_rc(again.returncode)} ({alone})")
        report.append(f"  saved input: {saved} (python {__file__} --replay {saved})")
    report.append("  child output (tail):\n" + tail)
    return False, "\n".join(report)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--examples", type=int, default=None)
    ap.add_argument("--entries", default=",".join(_ENTRIES))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--keep", default=None, help="folder for crashing inputs (default: tmp)")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--last", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--replay", default=None)
    a = ap.parse_args(argv)
    examples = a.examples
    if examples is None:
        examples = int(os.environ.get("TRITONDIV_FUZZ_EXAMPLES", DEFAULT_EXAMPLES))
    if a.list:
        print("\n".join(_ENTRIES))
        return 0
    if a.replay:
        return replay(Path(a.replay))
    if a.child:
        return run_child(a.child, examples, a.seed, Path(a.last))
    names = [n for n in a.entries.split(",") if n]
    unknown = [n for n in names if n not in _ENTRIES and n != "_selfcheck_crash"]
    if unknown:
        ap.error(f"unknown entries: {unknown}")
    with tempfile.TemporaryDirectory(prefix="tritondiv-fuzz-") as tmp:
        keep = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="tritondiv-fuzz-crash-"))
        keep.mkdir(parents=True, exist_ok=True)
        results = []
        with ThreadPoolExecutor(max_workers=max(1, a.jobs)) as ex:
            futs = [ex.submit(run_entry, n, examples, a.seed, Path(tmp), keep) for n in names]
            for fut in as_completed(futs):  # progress as each entry point finishes
                ok, msg = fut.result()
                results.append((ok, msg))
                if ok:
                    print(msg, flush=True)
        if not a.keep and not any(keep.iterdir()):
            keep.rmdir()
    failed = [msg for ok, msg in results if not ok]
    for msg in failed:
        print("FAIL " + msg)
    mode = " (sanitized)" if SANITIZED else ""
    print(f"fuzzed {len(names)} entry points x {examples} examples{mode}: {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
