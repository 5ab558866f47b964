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

__all__ = ["DIRECTION", "collect", "summarize", "write_report"]

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


#: Which way each metric moves when a dataset is more diverse (+1: higher is more diverse,
#: -1: lower is more diverse, 0: not a diversity measure — shown as a possible confound).
DIRECTION: dict[str, int] = {
    "distinct_1": +1,
    "distinct_2": +1,
    "token_entropy": +1,
    "mean_pairwise_distance": +1,
    "mean_length": 0,
    "compression_ratio": -1,
    "self_bleu": -1,
}
_DIRECTION_WORDS = {
    +1: "higher = more diverse",
    -1: "lower = more diverse",
    0: "not a diversity measure (a confound when it moves)",
}
#: A relative change of the response length (lowest to highest level) above this is flagged.
LENGTH_CONFOUND = 0.25
#: A change of any source's share (lowest to highest level) above this is flagged.
SOURCE_CONFOUND = 0.15


def _metric(r: dict[str, Any], component: str, key: str) -> float | None:
    v = ((r.get("metrics") or {}).get(component) or {}).get(key)
    return None if v is None else float(v)


def _ends(
    rows: list[dict[str, Any]], strategy: str
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The datasets of a strategy at its lowest and its highest level."""
    mine = sorted(
        (r for r in rows if r.get("strategy") == strategy), key=lambda r: float(r.get("level", 0))
    )
    if len(mine) < 2 or float(mine[0].get("level", 0)) == float(mine[-1].get("level", 0)):
        return None
    return mine[0], mine[-1]


def _source_shift(lo: dict[str, Any], hi: dict[str, Any]) -> tuple[str, float] | None:
    """The source whose share moves most between two datasets (from their ``sources``)."""
    a, b = lo.get("sources") or {}, hi.get("sources") or {}
    na, nb = sum(a.values()), sum(b.values())
    if not na or not nb:
        return None
    shifts = {s: b.get(s, 0) / nb - a.get(s, 0) / na for s in set(a) | set(b)}
    src = max(shifts, key=lambda s: (abs(shifts[s]), s))
    return src, shifts[src]


def summarize(rows: list[dict[str, Any]], strategies: list[str]) -> list[dict[str, Any]]:
    """Per strategy: how each metric changes from the lowest to the highest level, whether that
    is towards more diversity, and the confounds (length, source mix) to look at."""
    out = []
    for s in strategies:
        ends = _ends(rows, s)
        if ends is None:
            continue
        lo, hi = ends
        moves = []
        for comp in ("instruction", "response"):
            for key, label in METRICS:
                a, b = _metric(lo, comp, key), _metric(hi, comp, key)
                if a is None or b is None:
                    continue
                rel = (b - a) / abs(a) if a else (0.0 if b == a else float("inf"))
                moves.append(
                    {
                        "component": comp,
                        "metric": key,
                        "label": label,
                        "from": a,
                        "to": b,
                        "relative": rel,
                        "more_diverse": (DIRECTION[key] * (b - a) > 0) if DIRECTION[key] else None,
                    }
                )
        confounds = []
        a, b = _metric(lo, "response", "mean_length"), _metric(hi, "response", "mean_length")
        if a and b is not None and abs(b - a) / a > LENGTH_CONFOUND:
            confounds.append(
                f"response length {a:.0f} → {b:.0f} tokens ({(b - a) / a:+.0%}): part of what the "
                "other metrics show may be length"
            )
        shift = _source_shift(lo, hi)
        if shift is not None and abs(shift[1]) > SOURCE_CONFOUND:
            confounds.append(
                f"source mix: the share of {shift[0]} changes by {shift[1]:+.0%} across levels"
            )
        out.append(
            {
                "strategy": s,
                "levels": (float(lo.get("level", 0)), float(hi.get("level", 0))),
                "moves": moves,
                "confounds": confounds,
            }
        )
    return out


def _summary_html(summary: list[dict[str, Any]]) -> list[str]:
    if not summary:
        return ["<p>Fewer than two levels per strategy: no trend to summarize.</p>"]
    parts = [
        "<table class='summary'><tr><th>strategy</th><th>towards more diversity as the level "
        "rises</th><th>against</th><th>confounds to check</th></tr>"
    ]
    for item in summary:
        ok = [m for m in item["moves"] if m["more_diverse"] is True]
        bad = [m for m in item["moves"] if m["more_diverse"] is False]

        def words(ms: list[dict[str, Any]]) -> str:
            # the four largest moves; changes under 1% are not worth a curator's attention
            ms = [m for m in ms if abs(m["relative"]) >= 0.01]
            ms = sorted(ms, key=lambda m: -abs(m["relative"]))[:4]
            return (
                ", ".join(
                    f"{m['component'][:4]}. {html.escape(m['label'])} {m['relative']:+.0%}"
                    for m in ms
                )
                or "–"
            )

        conf = "<br>".join(html.escape(c) for c in item["confounds"]) or "none flagged"
        cls = " class='flag'" if item["confounds"] else ""
        parts.append(
            f"<tr><td>{html.escape(item['strategy'])}</td><td>{words(ok)}</td>"
            f"<td>{words(bad)}</td><td{cls}>{conf}</td></tr>"
        )
    parts.append("</table>")
    return parts


def _tokenizer_cell(tok: Any) -> str | None:
    """``name`` of a recorded tokenizer identity (with the first hash digits)."""
    if not isinstance(tok, dict):
        return None
    digest = str(tok.get("sha256") or "")[:8]
    return f"{tok.get('name', '?')}{' ' + digest if digest else ''}"


def _typeless_cell(info: Any) -> str | None:
    """``count (excluded)`` of a recorded typeless rule."""
    if not isinstance(info, dict):
        return None
    return f"{info.get('count', 0)} ({info.get('excluded', 0)})"


#: Sources shown per dataset in the datasets table (the rest summed as "other").
SOURCE_MIX_TOP = 3


def _source_mix(sources: Any) -> str:
    """The largest shares of a dataset's ``sources``, one per line (``name 48%``)."""
    if not isinstance(sources, dict) or not sources:
        return "–"
    total = sum(sources.values()) or 1
    ranked = sorted(sources.items(), key=lambda kv: (-kv[1], kv[0]))
    lines = [
        f"{html.escape(Path(str(k)).stem)} {v / total:.0%}" for k, v in ranked[:SOURCE_MIX_TOP]
    ]
    rest = sum(v for _, v in ranked[SOURCE_MIX_TOP:])
    if rest:
        lines.append(f"other {rest / total:.0%}")
    return "<br>".join(lines)


def _protocol_notes(rows: list[dict[str, Any]]) -> str:
    """One line on the sampler, length band and stratification the datasets used."""
    out = []
    samplers = sorted({str(r["sampler"]) for r in rows if r.get("sampler")})
    if samplers:
        out.append(f"type-strategy sampler: {', '.join(samplers)}")
    bands = sorted(
        {
            f"{b['band'][0]}:{'' if b['band'][1] is None else b['band'][1]}"
            for r in rows
            if isinstance(b := r.get("length_band"), dict)
        }
    )
    if bands:
        out.append(f"response length band (tokens): {', '.join(bands)}")
    if any(r.get("stratify") for r in rows):
        out.append("stratified by source (each source's share as in the candidates)")
    return html.escape("; ".join(out) + ".") if out else ""


def _dataset_links(path: str, manifest: dict[str, Any]) -> str:
    from tritondiv.dataset import DATA_FILE, MANIFEST_FILE, manifest_data_file

    try:
        name = manifest_data_file(manifest)
    except ValueError:
        name = DATA_FILE
    p = html.escape(path)
    return f"<a href='{p}/{name}'>{name}</a> · <a href='{p}/{MANIFEST_FILE}'>manifest</a>"


_STYLE = (
    "<style>body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:1200px;"
    "padding:0 1em;color:#222}table{border-collapse:collapse;font-size:13px;margin:.5em 0}"
    "td,th{border:1px solid #ccc;padding:3px 7px;text-align:right;vertical-align:top}"
    "th{background:#f0f0f0}td:first-child,th:first-child{text-align:left}"
    "table.summary td,table.summary th{text-align:left;max-width:420px}td.flag{background:#fff4d6}"
    "img{max-width:100%;border:1px solid #ddd}.note{color:#555;font-size:13px}"
    "details{margin:.5em 0}td.mix{text-align:left;white-space:nowrap;font-size:12px}</style>"
)
# Logs an error on the console for any plot that does not load (the report test checks it).
_IMAGE_CHECK = (
    "<script>window.addEventListener('load',()=>{for(const i of document.images){"
    "if(!i.complete||i.naturalWidth===0){console.error('image failed to load: '+i.src)}}});"
    "</script>"
)


def write_report(directory: str | Path) -> Path:
    """Write ``directory/report.html`` and its PNG plots; return the HTML path.

    The page leads with what a curator decides from: per strategy, which diversity metrics
    move towards more diversity as the level rises and by how much, and the confounds
    (response length, source mix) flagged; then the plots, the datasets (with links to
    each ``data.jsonl`` and manifest), and the time per stage last.
    """
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
        "<!doctype html><html><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width,initial-scale=1'>",
        f"<title>tritondiv report</title>{_STYLE}</head><body>",
        "<h1>tritondiv diversity ladder</h1>",
        f"<p class='note'>{len(rows)} datasets of {_fmt(index.get('size'))} samples from a pool "
        f"of {_fmt(pool.get('n_samples'))} (fingerprint <code>{_fmt(str(pool.get('fingerprint', ''))[:12])}"
        f"</code>), seed {_fmt(index.get('seed'))}; strategies: {_fmt(', '.join(strategies))}.</p>",
        "<h2>Summary: what rises with the diversity level</h2>",
        "<p class='note'>From each strategy's lowest to its highest level. "
        + "; ".join(
            f"{html.escape(label)}: {_DIRECTION_WORDS[DIRECTION[key]]}" for key, label in METRICS
        )
        + ".</p>",
        *_summary_html(summarize(rows, strategies)),
    ]
    for name, caption in images:
        parts.append(
            f"<h2>{html.escape(caption)}</h2><img src='{name}' alt='{html.escape(caption)}'>"
        )
    ordered = sorted(rows, key=lambda r: (str(r.get("strategy")), float(r.get("level", 0))))
    parts.append(
        "<h2>Datasets</h2><table><tr><th>strategy</th><th>level p</th><th>k</th>"
        "<th>k_min</th><th>k_max</th><th>coverage</th><th>n_types</th><th>samples</th>"
        "<th title='micro tokenizer (counts the tokens and the response lengths)'>tokenizer</th>"
        "<th title='samples of the family with no type; excluded as candidates'>typeless "
        "(excl.)</th><th title='mean response length, micro-tokenizer tokens'>resp. tokens</th>"
        "<th>source mix</th><th>files</th></tr>"
    )
    for r in ordered:
        cells = [r.get(k) for k in ("strategy", "level", "k", "k_min", "k_max", "coverage")]
        cells += [r.get("n_types"), r.get("size"), _tokenizer_cell(r.get("tokenizer"))]
        cells += [_typeless_cell(r.get("typeless")), r.get("mean_response_tokens")]
        row = "".join(f"<td>{_fmt(c)}</td>" for c in cells)
        row += f"<td class='mix'>{_source_mix(r.get('sources'))}</td>"
        parts.append(f"<tr>{row}<td>{_dataset_links(r['_path'], r)}</td></tr>")
    parts.append("</table>")
    notes = _protocol_notes(ordered)
    if notes:
        parts.append(f"<p class='note'>{notes}</p>")
    for comp in ("instruction", "response"):
        parts.append(
            f"<h3>{comp.capitalize()} metrics</h3><table><tr><th>strategy</th><th>level p</th>"
        )
        parts += [
            f"<th title='{_DIRECTION_WORDS[DIRECTION[key]]}'>{html.escape(label)} "
            f"{'↑' if DIRECTION[key] > 0 else '↓' if DIRECTION[key] < 0 else ''}</th>"
            for key, label in METRICS
        ]
        parts.append("</tr>")
        for r in ordered:
            cells = [r.get("strategy"), r.get("level")]
            cells += [_metric(r, comp, key) for key, _ in METRICS]
            parts.append("<tr>" + "".join(f"<td>{_fmt(c)}</td>" for c in cells) + "</tr>")
        parts.append("</table>")
    parts.append(
        "<p class='note'>↑ higher is more diverse, ↓ lower is more diverse; mean length is not a "
        "diversity measure.</p>"
    )
    bleu_n = {
        (r.get("metrics") or {}).get("response", {}).get("self_bleu_sample") for r in rows
    } - {None}
    if bleu_n:
        parts.append(
            f"<p class='note'>Self-BLEU sample size per dataset: "
            f"{_fmt(', '.join(map(str, sorted(bleu_n))))} "
            "texts (each against the other sampled texts).</p>"
        )
    runs = index.get("runs") or ([{"timings": index["timings"]}] if index.get("timings") else [])
    if runs:
        parts.append("<h2>Time per stage (s)</h2>")
        stages = list(dict.fromkeys(k for run in runs for k in run.get("timings", {})))
        head = "".join(
            f"<th>run {i + 1}{(' ' + html.escape(str(run['started']))) if run.get('started') else ''}</th>"
            for i, run in enumerate(runs)
        )
        parts.append(f"<table><tr><th>stage</th>{head}</tr>")
        for st in stages:
            vals = "".join(f"<td>{_fmt(run.get('timings', {}).get(st))}</td>" for run in runs)
            parts.append(f"<tr><td>{_fmt(st)}</td>{vals}</tr>")
        parts.append("</table>")
    parts.append(_IMAGE_CHECK)
    parts.append("</body></html>\n")
    out = d / "report.html"
    with atomic_write(out, "w", encoding="utf-8") as fh:
        fh.write("\n".join(parts))
    return out
