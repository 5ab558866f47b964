"""Draws docs/concepts.png, the README's picture of types, incidence, nested pools and level p.

.venv/bin/python docs/make_concepts_figure.py
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import FancyArrowPatch, Rectangle

rng = np.random.default_rng(3)
fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), gridspec_kw={"width_ratios": [1.1, 1, 1]})

# 1. the incidence: samples (rows) carry types (columns)
ax = axes[0]
n, t = 14, 10
inc = rng.random((n, t)) < 0.22
inc[np.arange(n), rng.integers(0, t, n)] = True
ys, xs = np.nonzero(inc)
ax.scatter(xs, ys, s=42, c="tab:blue")
ax.set_xlim(-0.7, t - 0.3)
ax.set_ylim(n - 0.3, -0.7)
ax.set_xticks(range(t), [f"t{i}" for i in range(t)], fontsize=7)
ax.set_yticks(range(n), [f"s{i}" for i in range(n)], fontsize=7)
ax.set_title("1. samples carry types (the incidence)\nmacro: topic · meso: tags · micro: mid-band tokens",
             fontsize=9)  # fmt: skip
ax.grid(alpha=0.25)

# 2. reverse greedy pruning: nested candidate pools
ax = axes[1]
ax.set_xlim(0, 10)
ax.set_ylim(0, 10)
ax.axis("off")
for i, (label, c) in enumerate(
    [
        ("k_max: every type, the whole pool", "#dbe9f6"),
        ("k types: pool S_k", "#a9cbe8"),
        ("k_min: smallest pool\nwith ≥ n samples", "#6aa3d5"),
    ]
):
    pad = 1.3 * i
    ax.add_patch(Rectangle((pad, pad), 10 - 2 * pad, 10 - 2 * pad, color=c, ec="#2a5d8a"))
    ax.text(pad + 0.2, 10 - pad - 0.2, label, fontsize=7.5, va="top")
ax.set_title("2. drop the rarest type and its samples, repeat:\nnested candidate pools S_k",
             fontsize=9)  # fmt: skip

# 3. level p -> type budget k(p), then an even pick of n samples from S_k
ax = axes[2]
p = np.linspace(0, 1, 7)
k_min, k_max = 40, 400
ax.plot(p, k_min + p * (k_max - k_min), marker="o", color="tab:green")
for x in p:
    ax.annotate("", (x, 0), (x, k_min + x * (k_max - k_min)),
                arrowprops={"arrowstyle": "-", "color": "#bbb", "lw": 0.8})  # fmt: skip
ax.set_xlabel("diversity level p (7 paper levels)", fontsize=8)
ax.set_ylabel("type budget k", fontsize=8)
ax.set_xticks(p, ["0", "1/6", "2/6", "3/6", "4/6", "5/6", "1"], fontsize=7)
ax.tick_params(labelsize=7)
ax.set_title("3. k(p) = k_min + p·(k_max − k_min);\nn samples from S_k, types evenly covered",
             fontsize=9)  # fmt: skip
ax.grid(alpha=0.3)

for a, b in ((0.345, 0.375), (0.655, 0.685)):
    fig.patches.append(FancyArrowPatch((a, 0.5), (b, 0.5), transform=fig.transFigure,
                                       arrowstyle="-|>", mutation_scale=18, color="#555"))  # fmt: skip
fig.tight_layout(w_pad=3)
fig.savefig(Path(__file__).with_name("concepts.png"), dpi=100)
