"""``make gpu-check``: one prepared run on a CUDA machine with no network.

The machine's ``python3`` already has torch, triton, transformers, pybind11 and
scikit-build-core. The script

1. installs the project with ``pip install --no-build-isolation --no-deps .`` (no venv, no
   downloads) and, when the folder ``gpu-wheels/`` (git-ignored; fill it with
   ``pip download --no-deps -d gpu-wheels trl liger-kernel peft`` on a machine with a network)
   holds wheels, installs those with ``--no-index --no-deps``;
2. runs ``pytest -m gpu`` (the GPU-only tests; ``TRITON_INTERPRET=0``);
3. times the Triton dissimilarity kernels (nearest, top-k, mean, k-means at 1M x 384) in
   float16 and bfloat16 against plain torch on the same GPU, with the fraction of the GPU's
   dense bf16 peak;
4. runs a 50-step SFT smoke test of a randomly initialised Llama-shaped model (about 1B
   parameters, sequence 2,048, half of the tokens response) with plain transformers, with
   Liger-Kernel, with Liger plus the response gather in front of Liger's fused linear
   cross-entropy, and with tritondiv's own Triton kernels, reporting tokens/s and peak memory;
5. writes ``gpu-results.json`` and ``gpu-results.md`` under ``$OUT`` (default ``gpu-out/``).

Each stage is timed and bounded; a stage that fails is recorded with its error and the run
goes on, so one result file always comes back. ``GPU_CHECK_DRY=1`` runs every stage on the
CPU at toy sizes without installing anything (what the test suite checks).

    make gpu-check                    # on the GPU machine
    GPU_CHECK_DRY=1 python tools/gpu_check.py   # anywhere: the dry run
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DRY = os.environ.get("GPU_CHECK_DRY", "0") == "1"
OUT = Path(os.environ.get("OUT") or (REPO / "gpu-out"))
WHEELS = REPO / "gpu-wheels"

#: Dense bf16 tensor-core peak (TFLOP/s) of GPUs the check may meet, from the vendors' sheets.
BF16_PEAK_TFLOPS: dict[str, float] = {
    "H200": 989.4,
    "H100 SXM": 989.4,
    "H100 PCIe": 756.0,
    "H100": 989.4,
    "A100": 312.0,
    "L40S": 362.1,
    "L4": 121.0,
    "A10": 125.0,
}


def log(msg: str) -> None:
    print(f"[gpu-check {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def stage(results: dict[str, Any], name: str, fn: Callable[[], Any]) -> None:
    log(f"stage {name} ...")
    t0 = time.perf_counter()
    try:
        results[name] = {"ok": True, "result": fn()}
    except Exception as exc:  # a failed stage is recorded; the next one still runs
        results[name] = {
            "ok": False,
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc()[-4000:],
        }
        log(f"stage {name} FAILED: {type(exc).__name__}: {exc}")
    results[name]["seconds"] = round(time.perf_counter() - t0, 2)
    log(f"stage {name} done in {results[name]['seconds']} s")


# ---- 1. install ----------------------------------------------------------------------------


def install() -> dict[str, Any]:
    if DRY:
        return {"skipped": "dry run: nothing installed"}
    cmd = [sys.executable, "-m", "pip", "install", "--no-build-isolation", "--no-deps", "."]
    run = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=420, check=False)
    out: dict[str, Any] = {
        "project": run.returncode,
        "log_tail": run.stdout[-1500:] + run.stderr[-1500:],
    }
    if run.returncode != 0:
        raise RuntimeError(f"pip install . failed:\n{out['log_tail']}")
    wheels = sorted(WHEELS.glob("*.whl")) if WHEELS.is_dir() else []
    if wheels:
        cmd = [sys.executable, "-m", "pip", "install", "--no-index", "--no-deps", *map(str, wheels)]
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
        out["wheels"] = {"files": [w.name for w in wheels], "returncode": run.returncode}
    else:
        out["wheels"] = {"files": [], "note": f"{WHEELS} holds no wheels (trl/liger/peft optional)"}
    return out


# ---- 2. pytest -m gpu ----------------------------------------------------------------------


def gpu_tests() -> dict[str, Any]:
    # From inside tests/ so that the installed package (with its compiled _core) is imported,
    # not the source folder of the checkout.
    env = {**os.environ, "TRITON_INTERPRET": "1" if DRY else "0"}
    args = [sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider",
            "--rootdir", str(REPO), "-c", str(REPO / "pyproject.toml")]  # fmt: skip
    args += ["--collect-only", "kernels", "sft"] if DRY else ["."]
    run = subprocess.run(
        args, cwd=REPO / "tests", env=env, capture_output=True, text=True, timeout=300, check=False
    )
    tail = (run.stdout + run.stderr).strip().splitlines()[-15:]
    if run.returncode not in (0, 5):
        raise RuntimeError("pytest -m gpu failed:\n" + "\n".join(tail))
    return {"returncode": run.returncode, "tail": tail}


# ---- 3. kernels ----------------------------------------------------------------------------


def _device() -> Any:
    import torch

    return torch.device("cuda" if torch.cuda.is_available() and not DRY else "cpu")


def _sync() -> None:
    import torch

    if torch.cuda.is_available() and not DRY:
        torch.cuda.synchronize()


def _time(fn: Callable[[], Any], repeats: int) -> float:
    fn()  # warm-up: compilation and autotuning are not timed
    _sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        _sync()
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def _peak() -> tuple[str, float | None]:
    import torch

    if not torch.cuda.is_available() or DRY:
        return platform.processor() or "cpu", None
    name = torch.cuda.get_device_name(0)
    for key, peak in BF16_PEAK_TFLOPS.items():
        if key in name:
            return name, peak
    return name, None


def kernels() -> dict[str, Any]:
    import torch

    import tritondiv as td

    dev = _device()
    device = "triton" if dev.type == "cuda" else "cpu"
    name, peak = _peak()
    n_big, n_mid, d, m = (2_000, 1_000, 32, 50) if DRY else (1_000_000, 200_000, 384, 1_000)
    reps = 1 if DRY else 3
    g = torch.Generator(device="cpu").manual_seed(0)
    rows: list[dict[str, Any]] = []

    def row(op: str, dtype: str, flops: float, ours: float, ref: float, shape: str) -> None:
        tflops = flops / ours / 1e12
        rows.append(
            {
                "op": op,
                "dtype": dtype,
                "shape": shape,
                "tritondiv_s": round(ours, 5),
                "torch_s": round(ref, 5),
                "speedup_vs_torch": round(ref / ours, 3),
                "tflops": round(tflops, 2),
                "fraction_of_bf16_peak": round(tflops / peak, 3) if peak else None,
            }
        )

    for dt_name, dt in (("float16", torch.float16), ("bfloat16", torch.bfloat16)):
        if dev.type == "cpu":
            dt_name, dt = "float32", torch.float32
        X = torch.randn(n_big, d, generator=g).to(dev, dt)
        Y = torch.randn(m, d, generator=g).to(dev, dt)
        Xn = torch.nn.functional.normalize(X.float(), dim=1).to(dt)
        Yn = torch.nn.functional.normalize(Y.float(), dim=1).to(dt)

        def torch_nearest(Xn: Any = Xn, Yn: Any = Yn) -> Any:
            best = []
            for s in range(0, n_big, 65_536):
                best.append((Xn[s : s + 65_536] @ Yn.T).float().max(dim=1))
            return best

        ours = _time(lambda X=X, Y=Y: td.nearest(X, Y, device=device), reps)
        ref = _time(torch_nearest, reps)
        row("nearest (cosine)", dt_name, 2.0 * n_big * m * d, ours, ref, f"{n_big}x{d} vs {m}")

        Z = X[:n_mid]
        Zn = Xn[:n_mid]

        def torch_topk(Zn: Any = Zn) -> Any:
            out = []
            for s in range(0, n_mid, 16_384):
                sims = (Zn[s : s + 16_384] @ Zn.T).float()
                out.append(sims.topk(21, dim=1))
            return out

        ours = _time(lambda Z=Z: td.topk(Z, k=20, device=device), reps)
        ref = _time(torch_topk, reps)
        row(
            "top-k k=20 (kNN graph)",
            dt_name,
            2.0 * n_mid * n_mid * d,
            ours,
            ref,
            f"{n_mid}x{d} self",
        )

        def torch_mean(Zn: Any = Zn) -> Any:
            total = torch.zeros((), device=dev, dtype=torch.float64)
            for s in range(0, n_mid, 16_384):
                total += (1.0 - (Zn[s : s + 16_384] @ Zn.T).float()).double().sum()
            return total

        ours = _time(lambda Z=Z: td.mean_dissimilarity(Z, device=device), reps)
        ref = _time(torch_mean, reps)
        row("mean pairwise distance", dt_name, 2.0 * n_mid * n_mid * d, ours, ref, f"{n_mid}x{d}")
        if dev.type == "cpu":
            break

    # k-means, 1,000 clusters, 10 iterations (float32 input; the assignment runs on the kernels)
    X = torch.randn(n_big, d, generator=g).to(dev)
    iters = 2 if DRY else 10

    def torch_kmeans() -> Any:
        Xn = torch.nn.functional.normalize(X, dim=1)
        C = Xn[torch.randperm(n_big, generator=g)[:m].to(dev)]
        for _ in range(iters):
            lab = torch.cat([(Xn[s : s + 65_536] @ C.T).argmax(1) for s in range(0, n_big, 65_536)])
            C = torch.zeros_like(C).index_add_(0, lab, Xn)
            C = torch.nn.functional.normalize(C, dim=1)
        return C

    t0 = time.perf_counter()
    km = td.kmeans(X, m, iters=iters, seed=0, device=device, progress=False)
    _sync()
    ours = time.perf_counter() - t0
    ref = _time(torch_kmeans, 1)
    row("k-means (10 Lloyd iterations)", "float32", 2.0 * n_big * m * d * (iters + 1), ours, ref,
        f"{n_big}x{d}, {m} clusters")  # fmt: skip
    return {
        "device": name,
        "bf16_peak_tflops": peak,
        "kmeans_objective": float(km.objective),
        "rows": rows,
    }


# ---- 4. SFT smoke --------------------------------------------------------------------------


def _llama(dev: Any) -> Any:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    if DRY:
        cfg = LlamaConfig(vocab_size=512, hidden_size=64, intermediate_size=128,
                          num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                          max_position_embeddings=256)  # fmt: skip
    else:  # ~1.1B parameters, TinyLlama-shaped
        cfg = LlamaConfig(vocab_size=32_000, hidden_size=2048, intermediate_size=5632,
                          num_hidden_layers=22, num_attention_heads=32, num_key_value_heads=4,
                          max_position_embeddings=2048)  # fmt: skip
    torch.manual_seed(0)
    dtype = torch.float32 if DRY else torch.bfloat16
    model = LlamaForCausalLM(cfg).to(dev, dtype)
    model.config.use_cache = False
    if not DRY:
        model.gradient_checkpointing_enable()
    return model


def _sft_variant(variant: str) -> dict[str, Any]:
    import torch

    dev = _device()
    seq, batch, steps = (128, 2, 3) if DRY else (2048, 4, 50)
    if variant.startswith("liger"):
        try:
            import liger_kernel.transformers as lk
        except ImportError:
            return {"skipped": "liger-kernel is not installed (put its wheel in gpu-wheels/)"}
        if dev.type != "cuda":
            return {"skipped": "Liger's kernels need CUDA"}
        lk.apply_liger_kernel_to_llama(
            rope=True, rms_norm=True, swiglu=True, cross_entropy=False,
            fused_linear_cross_entropy=False,
        )  # fmt: skip
    model = _llama(dev)
    if variant == "tritondiv":
        from tritondiv.sft.patch import apply_fused_kernels

        apply_fused_kernels(model, "triton" if dev.type == "cuda" else "torch")
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=dev.type == "cuda")
    g = torch.Generator(device="cpu").manual_seed(0)
    vocab = model.config.vocab_size
    ids = torch.randint(0, vocab, (batch, seq), generator=g).to(dev)
    labels = ids.clone()
    labels[:, : seq // 2] = -100  # half prompt, half response
    batch_d = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}

    n_targets = max(int((labels[:, 1:] != -100).sum()), 1)

    def loss_fn() -> Any:
        if variant == "plain":  # transformers' own loss: full logits of every token
            return model(**batch_d).loss
        if variant == "tritondiv":
            from tritondiv.sft.patch import causal_lm_loss

            return causal_lm_loss(model, batch_d)
        # the shipped trainer's loss (tritondiv.sft.trl_train): Liger's fused linear
        # cross-entropy, with or without the response gather in front of it
        from tritondiv.sft.trl_train import response_loss_sum

        gather = variant == "liger-gather"
        return response_loss_sum(model, batch_d, kernels="liger", gather=gather) / n_targets

    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    losses = []
    t_start = None
    for step in range(steps):
        if step == 1:  # the first step (allocation, compilation) is not timed
            _sync()
            t_start = time.perf_counter()
        loss = loss_fn()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
    _sync()
    elapsed = time.perf_counter() - (t_start or time.perf_counter())
    timed = max(steps - 1, 1)
    out = {
        "steps": steps,
        "seq": seq,
        "batch": batch,
        "params": sum(p.numel() for p in model.parameters()),
        "tokens_per_s": round(timed * batch * seq / elapsed, 1) if elapsed > 0 else None,
        "peak_mem_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2)
        if dev.type == "cuda"
        else None,
        "loss_first": round(losses[0], 4),
        "loss_last": round(losses[-1], 4),
    }
    return out


def sft_smoke() -> dict[str, Any]:
    # Each variant in its own process: Liger patches the transformers classes in place. The dry
    # run (where Liger is skipped) runs them in this process.
    out = {}
    for variant in ("plain", "liger", "liger-gather", "tritondiv"):
        if DRY:
            out[variant] = _sft_variant(variant)
            continue
        run = subprocess.run(
            [sys.executable, __file__, "--sft-variant", variant],
            capture_output=True, text=True, timeout=240 if not DRY else 120, check=False,
        )  # fmt: skip
        lines = [ln for ln in run.stdout.splitlines() if ln.startswith("{")]
        if run.returncode == 0 and lines:
            out[variant] = json.loads(lines[-1])
        else:
            out[variant] = {"error": (run.stdout + run.stderr)[-2000:]}
    return out


# ---- 5. results ----------------------------------------------------------------------------


def write_results(results: dict[str, Any]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "gpu-results.json").write_text(json.dumps(results, indent=2) + "\n")
    md = [f"# gpu-check ({'dry run, CPU' if DRY else 'GPU'})", ""]
    env = results.get("environment", {})
    md.append(
        f"Machine: {env.get('device')}; torch {env.get('torch')}; triton {env.get('triton')}."
    )
    md.append("")
    for name in ("install", "gpu_tests", "kernels", "sft"):
        st = results.get(name, {})
        md.append(f"- {name}: {'ok' if st.get('ok') else 'FAILED: ' + str(st.get('error'))} "
                  f"({st.get('seconds')} s)")  # fmt: skip
    k = (results.get("kernels") or {}).get("result") or {}
    if k.get("rows"):
        md += ["", "| op | dtype | shape | tritondiv s | torch s | speed-up | TFLOP/s | of bf16 peak |",
               "|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for r in k["rows"]:
            frac = (
                "–" if r["fraction_of_bf16_peak"] is None else f"{r['fraction_of_bf16_peak']:.1%}"
            )
            md.append(f"| {r['op']} | {r['dtype']} | {r['shape']} | {r['tritondiv_s']} | "
                      f"{r['torch_s']} | {r['speedup_vs_torch']}× | {r['tflops']} | {frac} |")  # fmt: skip
    s = (results.get("sft") or {}).get("result") or {}
    if s:
        md += ["", "| SFT variant | tokens/s | peak memory GiB | loss first → last | note |",
               "|---|---|---|---|---|"]  # fmt: skip
        for v, r in s.items():
            note = r.get("skipped") or (
                r.get("error", "")[-200:].replace("\n", " ") if "error" in r else ""
            )
            md.append(f"| {v} | {r.get('tokens_per_s', '–')} | {r.get('peak_mem_gib', '–')} | "
                      f"{r.get('loss_first', '–')} → {r.get('loss_last', '–')} | {note} |")  # fmt: skip
    (OUT / "gpu-results.md").write_text("\n".join(md) + "\n")


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--sft-variant":
        print(json.dumps(_sft_variant(sys.argv[2])))
        return 0
    os.environ.setdefault("TRITON_INTERPRET", "0")
    t0 = time.perf_counter()
    results: dict[str, Any] = {"dry": DRY}
    stage(results, "install", install)
    import torch

    try:
        import triton

        triton_version = triton.__version__
    except ImportError:
        triton_version = None
    results["environment"] = {
        "device": _peak()[0],
        "torch": torch.__version__,
        "triton": triton_version,
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
    }
    stage(results, "gpu_tests", gpu_tests)
    stage(results, "kernels", kernels)
    stage(results, "sft", sft_smoke)
    results["total_seconds"] = round(time.perf_counter() - t0, 1)
    write_results(results)
    log(f"wrote {OUT / 'gpu-results.json'} and {OUT / 'gpu-results.md'} "
        f"in {results['total_seconds']} s")  # fmt: skip
    failed = [n for n in ("install", "gpu_tests", "kernels", "sft") if not results[n]["ok"]]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
