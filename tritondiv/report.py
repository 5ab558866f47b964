"""``DIR/report.html`` with PNG plots (matplotlib, Agg) for a ladder directory.

Plots: every diversity metric against level, one panel per metric, one line per
strategy (``metrics_instruction.png``, ``metrics_response.png``); coverage against level
(``coverage.png``: each strategy's own type coverage, then one panel per type family with
every strategy's coverage of it); the token-frequency band plot (``token_band.png``:
sorted token frequencies of the pool, log-log, the dropped bands below ``lo`` and above
``hi`` shaded, as in the paper's Figure 2). A directory without a ladder index (e.g.
datasets written by ``tritondiv select``) is reported from the manifests found under it.
Every dataset and ladder file is read through :mod:`tritondiv.dataset`.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np

from tritondiv._io import atomic_write, load_npz

__all__ = ["collect", "write_report"]

METRICS: tuple[tuple[str, str], ...] = (
    ("distinct_1", "distinct-1"),
    ("distinct_2", "distinct-2"),
    ("token_entropy", "token entropy (bits)"),
    ("mean_pairwise_distance", "mean pairwise cosine distance"),
    ("mean_length", "mean length (tokens)"),
    ("compression_ratio", "compression ratio (zlib)"),
    ("self_bleu", "self-BLEU-4 (sampled)"),
)


def collect(directory: str | Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The ladder index (or a synthetic one) and the manifests of its finished datasets."""
    from tritondiv.dataset import LADDER_FILE, find_datasets, read_ladder

    d = Path(directory)
    if not d.is_dir():
        raise FileNotFoundError(
            f"{d} is not a directory: pass a ladder directory (it holds {LADDER_FILE})"
        )
    rows: list[dict[str, Any]] = []
    if (d / LADDER_FILE).is_file():
        index, datasets = read_ladder(d, missing="skip")
        for entry in datasets:
            man = dict(entry["manifest"])
            man["_path"] = Path(entry["path"]).relative_to(d).as_posix()
            rows.append(man)
    else:
        index = {"datasets": [], "strategies": []}
        for folder, found in find_datasets(d):
            man = dict(found)
            man["_path"] = folder.relative_to(d).as_posix()
            rows.append(man)
            if man.get("strategy") not in index["strategies"]:
                index["strategies"].append(man.get("strategy"))
        if not rows:
            raise FileNotFoundError(
                f"{d} holds neither {LADDER_FILE} nor any finished dataset: pass the --out "
                "directory of `tritondiv ladder` or `tritondiv select`"
            )
    return index, rows


def _series(
    rows: list[dict[str, Any]], strategy: str, getter: Any
) -> tuple[list[float], list[float]]:
    pts = []
    for r in rows:
        if r.get("strategy") != strategy:
            continue
        try:
            v = getter(r)
        except (KeyError, TypeError):
            v = None
        if v is not None:
            pts.append((float(r.get("level", 0.0)), float(v)))
    pts.sort()
    return [p for p, _ in pts], [v for _, v in pts]


def _grid(n: int) -> tuple[int, int]:
    cols = min(4, max(1, n))
    return (n + cols - 1) // cols, cols


def _plot_panels(
    path: Path,
    panels: list[tuple[str, Any]],
    strategies: list[str],
    rows: list[dict[str, Any]],
    title: str,
) -> bool:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nr, nc = _grid(len(panels))
    fig, axes = plt.subplots(nr, nc, figsize=(4.2 * nc, 3.2 * nr), squeeze=False)
    drew = False
    for ax, (label, getter) in zip(axes.flat, panels, strict=False):
        for s in strategies:
            x, y = _series(rows, s, getter)
            if x:
                ax.plot(x, y, marker="o", ms=3, label=s)
                drew = True
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("diversity level p", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    handles, labels = [], []
    for ax in axes.flat:
        h, lab = ax.get_legend_handles_labels()
        for hh, ll in zip(h, lab, strict=True):
            if ll not in labels:
                handles.append(hh)
                labels.append(ll)
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=min(5, len(labels)), fontsize=8)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout(rect=(0, 0.08, 1, 0.96))
    _savefig(fig, path)
    plt.close(fig)
    return drew


def _savefig(fig: Any, path: Path) -> None:
    with atomic_write(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=110)


def _plot_band(path: Path, counts_file: Path) -> bool:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = load_npz(counts_file)
    lo, hi = (int(v) for v in data["band"])
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), squeeze=False)
    drew = False
    for ax, component in zip(axes.flat, ("instruction", "response"), strict=True):
        counts = data.get(f"counts_{component}")
        if counts is None:
            ax.axis("off")
            continue
        freq = np.sort(counts[counts > 0])[::-1]
        if freq.size == 0:
            ax.axis("off")
            continue
        rank = np.arange(1, freq.size + 1)
        ax.loglog(rank, freq, color="black", lw=1)
        top = max(float(freq[0]) * 2, hi * 2.0)
        ax.axhspan(hi, top, color="tab:red", alpha=0.15, label=f"> hi={hi}: dropped (too frequent)")
        ax.axhspan(
            lo, hi, color="tab:green", alpha=0.15, label=f"[{lo}, {hi}]: mid band = micro types"
        )
        ax.axhspan(0.5, lo, color="tab:blue", alpha=0.15, label=f"< lo={lo}: dropped (too rare)")
        ax.set_ylim(0.5, top)
        in_band = int(((freq >= lo) & (freq <= hi)).sum())
        ax.set_title(f"{component}: {freq.size} token ids, {in_band} in the band", fontsize=9)
        ax.set_xlabel("rank", fontsize=8)
        ax.set_ylabel("pool frequency", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7, loc="lower left")
        drew = True
    fig.suptitle("Token-frequency band (micro types)", fontsize=11)
    fig.tight_layout()
    _savefig(fig, path)
    plt.close(fig)
    return drew


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.4g}"
    return html.escape(str(v))


def write_report(directory: str | Path) -> Path:
    """Write ``directory/report.html`` and its PNG plots; return the HTML path."""
    from tritondiv.dataset import MANIFEST_FILE

    d = Path(directory)
    index, rows = collect(d)
    strategies = [s for s in index.get("strategies", []) if s] or sorted(
        {r.get("strategy") for r in rows if r.get("strategy")}
    )
    images: list[tuple[str, str]] = []
    for component in ("instruction", "response"):
        panels = [
            (label, (lambda r, c=component, k=key: r["metrics"][c][k])) for key, label in METRICS
        ]
        name = f"metrics_{component}.png"
        if _plot_panels(
            d / name, panels, strategies, rows, f"{component} diversity metrics against level"
        ):
            images.append((name, f"Diversity metrics of the {component}s"))
    families = sorted({f for r in rows for f in ((r.get("metrics") or {}).get("coverage") or {})})
    cov_panels: list[tuple[str, Any]] = [
        ("own type coverage (fraction of the strategy's types)", lambda r: r["coverage_fraction"])
    ]
    cov_panels += [
        (f"coverage of {fam} types", (lambda r, f=fam: r["metrics"]["coverage"][f]["fraction"]))
        for fam in families
    ]
    if _plot_panels(
        d / "coverage.png", cov_panels, strategies, rows, "type coverage against level"
    ):
        images.append(("coverage.png", "Type coverage"))
    counts_file = d / "token_counts.npz"
    if counts_file.is_file() and _plot_band(d / "token_band.png", counts_file):
        images.append(("token_band.png", "Token-frequency band (the paper's Figure 2)"))

    pool = index.get("pool") or (rows[0].get("pool") if rows else {}) or {}
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>tritondiv report</title>",
        "<style>body{font-family:sans-serif;margin:2em;max-width:1400px}"
        "table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;padding:2px 6px;"
        "text-align:right}th{background:#eee}img{max-width:100%;border:1px solid #ddd}</style>",
        "</head><body><h1>tritondiv diversity ladder</h1>",
        f"<p>Pool fingerprint <code>{_fmt(pool.get('fingerprint'))}</code>, "
        f"{_fmt(pool.get('n_samples'))} samples; size {_fmt(index.get('size'))}; "
        f"seed {_fmt(index.get('seed'))}; {len(rows)} datasets; strategies: "
        f"{_fmt(', '.join(strategies))}.</p>",
    ]
    timings = index.get("timings")
    if timings:
        parts.append("<h2>Time per stage (s)</h2><table><tr><th>stage</th><th>seconds</th></tr>")
        parts += [f"<tr><td>{_fmt(k)}</td><td>{_fmt(v)}</td></tr>" for k, v in timings.items()]
        parts.append("</table>")
    for name, caption in images:
        parts.append(
            f"<h2>{html.escape(caption)}</h2><img src='{name}' alt='{html.escape(caption)}'>"
        )
    parts.append(
        "<h2>Datasets</h2><table><tr><th>strategy</th><th>level</th><th>k</th>"
        "<th>k_min</th><th>k_max</th><th>coverage</th><th>n_types</th>"
    )
    for comp in ("instruction", "response"):
        parts += [f"<th>{comp[:4]}. {html.escape(label)}</th>" for _, label in METRICS]
    parts.append("<th>dataset</th></tr>")
    for r in sorted(rows, key=lambda r: (str(r.get("strategy")), float(r.get("level", 0)))):
        cells = [
            r.get("strategy"),
            r.get("level"),
            r.get("k"),
            r.get("k_min"),
            r.get("k_max"),
            r.get("coverage"),
            r.get("n_types"),
        ]
        met = r.get("metrics") or {}
        for comp in ("instruction", "response"):
            cells += [(met.get(comp) or {}).get(key) for key, _ in METRICS]
        row = "".join(f"<td>{_fmt(c)}</td>" for c in cells)
        path = html.escape(r["_path"])
        parts.append(f"<tr>{row}<td><a href='{path}/{MANIFEST_FILE}'>{path}</a></td></tr>")
    parts.append("</table>")
    bleu_n = {
        (r.get("metrics") or {}).get("response", {}).get("self_bleu_sample") for r in rows
    } - {None}
    if bleu_n:
        parts.append(
            f"<p>Self-BLEU sample size per dataset: {_fmt(', '.join(map(str, sorted(bleu_n))))} "
            "texts (each against the other sampled texts).</p>"
        )
    parts.append("</body></html>\n")
    out = d / "report.html"
    with atomic_write(out, "w", encoding="utf-8") as fh:
        fh.write("\n".join(parts))
    return out
