"""Which extras a command will need, checked before it starts any work.

A long ``tritondiv ladder`` must not die at its end for want of matplotlib: each command
asks :func:`check_run` first, which raises one :class:`~tritondiv._extras.MissingExtraError`
line naming the extra to install.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tritondiv._extras import check_extras

__all__ = ["check_run", "extras_for"]


def _has_precomputed(options: Any, component: str) -> bool:
    return bool(getattr(options, f"embeddings_{component}", None))


def extras_for(
    strategies: Iterable[str],
    options: Any,
    *,
    metrics: bool,
    report: bool = False,
    default_pool: bool = False,
) -> list[str]:
    """The extras a selection of ``strategies`` with these options will import.

    Embeddings (the ``embed`` extra) are needed by the macro strategies and the embedding
    baselines unless the component's embeddings are given precomputed, by the meso
    strategies (tag normalization merges near-duplicate tags by embedding), and by the
    metrics (mean pairwise distance) unless both components' embeddings are precomputed.
    """
    from tritondiv.strategies import strategy_spec

    needs: list[str] = []
    if default_pool:
        needs.append("demo")
    embed = False
    for name in strategies:
        spec = strategy_spec(name)
        family = str(getattr(spec, "family", "") or "")
        component = str(getattr(spec, "component", "") or getattr(options, "component", ""))
        if family.endswith("meso"):
            embed = True
        elif family.endswith("micro"):
            continue
        elif not _has_precomputed(options, component or "response"):
            embed = True
    if metrics and not all(_has_precomputed(options, c) for c in ("instruction", "response")):
        embed = True
    if embed:
        needs.append("embed")
    if report:
        needs.append("report")
    return needs


def check_run(
    what: str,
    strategies: Iterable[str],
    options: Any,
    *,
    metrics: bool,
    report: bool = False,
    default_pool: bool = False,
) -> None:
    """Raise :class:`~tritondiv._extras.MissingExtraError` before any work when an extra
    that this run needs is not installed."""
    needs = extras_for(
        strategies, options, metrics=metrics, report=report, default_pool=default_pool
    )
    if needs:
        check_extras(*needs, what=what)
