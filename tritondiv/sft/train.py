"""The fine-tuning loop behind ``tritondiv sft``: seeded, resumable, atomic checkpoints.

``out/`` after a run::

    out/model/                 the fine-tuned model + tokenizer (save_pretrained)
    out/checkpoints/step-N/    model.pt, optimizer.pt, scheduler.pt, rng.pt, state.json
    out/sft_manifest.json      config, data and model provenance, per-step losses, timings

Every checkpoint and the final model are written into a temporary folder beside their
destination and renamed into place, so a crash never leaves a half-written one. The
micro-batch order is a pure function of ``(seed, epoch)`` (see
:func:`tritondiv.sft.data.length_grouped_batches`), so a run resumed from step ``N``
replays exactly the batches, learning rates and random state of an uninterrupted run --
the same losses, for a seed (on the same device and thread count).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tritondiv._io import (
    clean_stale_temporaries,
    file_sha256,
    temporary_name,
    write_json_atomic,
)
from tritondiv.dataset import data_file
from tritondiv.sft.data import (
    EncodedData,
    collate,
    encode_pairs,
    length_grouped_batches,
    load_pairs,
)
from tritondiv.sft.patch import apply_fused_kernels, causal_lm_loss

__all__ = [
    "TrainConfig",
    "evaluate_loss",
    "load_model",
    "train",
]

MANIFEST = "sft_manifest.json"


@dataclass
class TrainConfig:
    """Hyper-parameters of one fine-tuning run (all recorded in the manifest).

    ``steps`` counts optimizer steps of ``batch_size x grad_accum`` samples; the learning
    rate warms up linearly for ``warmup_steps`` then follows ``schedule`` (``"cosine"`` to
    10% of ``lr``, ``"linear"`` to 0, or ``"constant"``). ``save_every = 0`` saves only the
    last step; ``keep_checkpoints = 0`` deletes the checkpoints once the run has finished
    (the model is saved; a finished run is never redone). ``kernels`` is the fused-kernel
    switch (:func:`tritondiv.sft.trl_train.resolve_loss_kernels`; the own loop:
    :mod:`tritondiv.sft.patch`), ``chunk_size`` the rows per loss chunk of the own loop
    (default: by vocabulary size). ``trainer``: ``"trl"`` (TRL's ``SFTTrainer``,
    :mod:`tritondiv.sft.trl_train`, the default) or ``"own"`` (the loop of this module).
    ``extra`` holds the TRL trainer's options (``gather_response``, ``lora_r``, ...).
    """

    steps: int = 100
    batch_size: int = 8
    grad_accum: int = 1
    lr: float = 2e-5
    weight_decay: float = 0.0
    warmup_steps: int = 0
    schedule: str = "cosine"
    max_grad_norm: float = 1.0
    max_length: int = 512
    seed: int = 0
    save_every: int = 0
    keep_checkpoints: int = 2
    kernels: str = "auto"
    chunk_size: int | None = None
    template: str = "auto"
    dtype: str = "auto"
    trainer: str = "trl"
    extra: dict[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        for name in ("steps", "batch_size", "grad_accum", "max_length"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1; got {getattr(self, name)}")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0; got {self.lr}")
        if self.schedule not in ("cosine", "linear", "constant"):
            raise ValueError(
                f"schedule must be 'cosine', 'linear' or 'constant'; got {self.schedule!r}"
            )
        if self.dtype not in ("auto", "float32", "bfloat16", "float16"):
            raise ValueError(f"dtype must be auto/float32/bfloat16/float16; got {self.dtype!r}")
        if self.save_every < 0 or self.keep_checkpoints < 0:
            raise ValueError("save_every and keep_checkpoints must be >= 0")
        if self.trainer not in ("trl", "own"):
            raise ValueError(f"trainer must be 'trl' or 'own'; got {self.trainer!r}")

    # what must match for a resume to replay the same run
    def resume_key(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("save_every", "keep_checkpoints", "extra"):
            d.pop(k)
        return d


def _torch_dtype(name: str) -> torch.dtype:
    if name == "auto":
        if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    return getattr(torch, name)


def load_model(
    model_path: str | os.PathLike[str], *, gguf_file: str | None = None, dtype: str = "auto"
) -> tuple[Any, Any]:
    """Load a transformers causal LM and its tokenizer from a local folder (or a GGUF file
    inside it, via ``gguf_file``), offline. The tokenizer gets a pad token (its EOS) when
    it has none."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(model_path)
    if gguf_file is None and path.is_file() and path.suffix == ".gguf":
        path, gguf_file = path.parent, path.name
    if not path.is_dir():
        raise FileNotFoundError(
            f"model folder {path} does not exist (pass a local folder or a .gguf file)"
        )
    kw: dict[str, Any] = {"local_files_only": True}
    if gguf_file:
        kw["gguf_file"] = gguf_file
    tokenizer = AutoTokenizer.from_pretrained(str(path), **kw)
    model: Any = AutoModelForCausalLM.from_pretrained(str(path), dtype=_torch_dtype(dtype), **kw)
    if gguf_file:
        # transformers de-quantizes GGUF weights into plain tensors but keeps a GGUF
        # "quantizer" that refuses save_pretrained; the weights are ordinary now.
        model.hf_quantizer = None
        model.is_quantized = False
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def _lr_lambda(cfg: TrainConfig) -> Callable[[int], float]:
    def f(step: int) -> float:
        if cfg.warmup_steps and step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        if cfg.schedule == "constant":
            return 1.0
        span = max(1, cfg.steps - cfg.warmup_steps)
        t = min(1.0, (step - cfg.warmup_steps) / span)
        if cfg.schedule == "linear":
            return 1.0 - t
        return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * t))

    return f


def _micro_batches(data: EncodedData, cfg: TrainConfig) -> Callable[[int], np.ndarray]:
    lengths = data.lengths
    cache: dict[int, list[np.ndarray]] = {}

    def get(m: int) -> np.ndarray:
        per_epoch = math.ceil(len(lengths) / cfg.batch_size)
        epoch, pos = divmod(m, per_epoch)
        if epoch not in cache:
            cache.clear()
            cache[epoch] = length_grouped_batches(
                lengths, cfg.batch_size, seed=cfg.seed, epoch=epoch
            )
        return cache[epoch][pos]

    return get


def _atomic_dir(final: Path, write: Callable[[Path], None]) -> None:
    """Write a folder beside ``final`` (``.<name>.tmp-<pid>-<random>``) and rename it into
    place; temporaries of killed runs there are removed first."""
    final.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_temporaries(final.parent)
    tmp = final.parent / temporary_name(final.name)
    tmp.mkdir()
    try:
        write(tmp)
        old = None
        if final.exists():
            old = final.parent / temporary_name(final.name, "old")
            os.replace(final, old)
        os.replace(tmp, final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _checkpoints(out: Path) -> list[tuple[int, Path]]:
    root = out / "checkpoints"
    if not root.is_dir():
        return []
    found = []
    for p in root.iterdir():
        if p.name.startswith("step-") and (p / "state.json").is_file():
            with contextlib.suppress(ValueError):
                found.append((int(p.name[5:]), p))
    return sorted(found)


def _load_checkpoint_file(path: Path, device: Any = None) -> Any:
    """``torch.load`` of one checkpoint file with ``weights_only=True``: tensors, numbers,
    strings and containers only, never code (a planted pickle is refused)."""
    import pickle

    try:
        return torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(
            f"{path} is not a checkpoint file tritondiv wrote (it holds objects other than "
            f"tensors and plain values; loading refused: {first}); delete {path.parent} or "
            "pass resume=False / --no-resume"
        ) from None


def _rng_state() -> dict[str, Any]:
    """The random state as plain tensors (loadable with ``weights_only=True``)."""
    st: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def evaluate_loss(
    model: Any,
    data: EncodedData,
    *,
    batch_size: int = 8,
    chunk_size: int | None = None,
    progress: bool = False,
) -> dict[str, float]:
    """Mean negative log-likelihood of the reference responses (response tokens only) and
    its perplexity: ``{"loss", "perplexity", "tokens"}``."""
    from tqdm.auto import tqdm

    device = next(model.parameters()).device
    pad = getattr(model.config, "pad_token_id", None) or 0
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    order = np.argsort(-data.lengths, kind="stable")
    with torch.no_grad():
        for s in tqdm(
            range(0, len(order), batch_size), desc="eval", disable=not progress, leave=False
        ):
            batch = {
                k: v.to(device) for k, v in collate(data, order[s : s + batch_size], pad).items()
            }
            total += float(causal_lm_loss(model, batch, chunk_size=chunk_size, reduction="sum"))
            count += int((batch["labels"][:, 1:] != -100).sum())
    model.train(was_training)
    loss = total / max(count, 1)
    return {"loss": loss, "perplexity": math.exp(min(loss, 700.0)), "tokens": count}


def training_pairs(dataset: Any) -> tuple[list[str], list[str], dict[str, Any]]:
    """The instruction and response texts of ``dataset`` (a path, or a pair of text lists)
    and its description for the run's manifest (path, sha256 of the data, samples)."""
    if isinstance(dataset, tuple):
        instructions, responses = list(dataset[0]), list(dataset[1])
        data_info: dict[str, Any] = {"path": None, "samples": len(instructions)}
    else:
        instructions, responses = load_pairs(dataset)
        dpath = Path(dataset)
        data_info = {
            "path": str(dpath),
            "sha256": file_sha256(data_file(dpath)),
            "samples": len(instructions),
        }
    if not instructions:
        raise ValueError(f"dataset {data_info['path']} has no samples")
    return instructions, responses, data_info


def train(
    model_path: str | os.PathLike[str],
    dataset: str | os.PathLike[str] | tuple[Sequence[str], Sequence[str]],
    out_dir: str | os.PathLike[str],
    config: TrainConfig | None = None,
    *,
    gguf_file: str | None = None,
    resume: bool = True,
    progress: bool = True,
    stop_after: int | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Fine-tune the causal LM at ``model_path`` on ``dataset`` and write ``out_dir``.

    ``config.trainer == "trl"`` (the default) hands the run to
    :func:`tritondiv.sft.trl_train.train_trl`; ``"own"`` runs the loop below.

    Parameters
    ----------
    model_path : path
        Local transformers model folder (or a ``.gguf`` file; or a folder + ``gguf_file``).
    dataset : path or (instructions, responses)
        A dataset file/folder (:func:`tritondiv.sft.data.load_pairs`) or the texts.
    out_dir : path
        Output folder (see the module docstring).
    config : TrainConfig
        Hyper-parameters (default ``TrainConfig()``).
    resume : bool
        Continue from the newest checkpoint in ``out_dir`` (its configuration must
        match); a finished run with the same configuration is returned as is.
    stop_after : int, optional
        Stop (after checkpointing) once this step is reached -- an interruption on
        purpose, for tests and time-boxed jobs; ``train`` again resumes.

    Returns
    -------
    dict
        The manifest (also written to ``out_dir/sft_manifest.json``).
    """
    from tqdm.auto import tqdm

    cfg = config or TrainConfig()
    cfg.check()
    if cfg.trainer == "trl":
        from tritondiv.sft.trl_train import train_trl

        return train_trl(
            model_path,
            dataset,
            out_dir,
            cfg,
            gguf_file=gguf_file,
            resume=resume,
            progress=progress,
            stop_after=stop_after,
            log=log,
        )
    own_kernels = {"tritondiv": "triton"}.get(cfg.kernels, cfg.kernels)
    if own_kernels not in ("auto", "triton", "torch"):
        raise ValueError(
            f"kernels={cfg.kernels!r} is for trainer='trl'; the own loop takes auto, triton "
            "(tritondiv) or torch"
        )
    say = log or (lambda _m: None)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    instructions, responses, data_info = training_pairs(dataset)
    key = {
        "config": cfg.resume_key(),
        "data": data_info,
        "model": str(model_path),
        "gguf_file": gguf_file,
    }

    man_path = out / MANIFEST
    if resume and man_path.is_file():
        old = json.loads(man_path.read_text(encoding="utf-8"))
        if old.get("status") == "finished" and old.get("key") == key and (out / "model").is_dir():
            say(f"{out}: finished earlier with the same configuration, skipped")
            return old

    torch.manual_seed(cfg.seed)
    model, tokenizer = load_model(model_path, gguf_file=gguf_file, dtype=cfg.dtype)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device)
    patched = apply_fused_kernels(model, own_kernels)
    model.train()
    data = encode_pairs(
        tokenizer, instructions, responses, max_length=cfg.max_length, template=cfg.template
    )
    if len(data) == 0:
        raise ValueError(f"no sample keeps a response token within max_length={cfg.max_length}")
    batch_of = _micro_batches(data, cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(cfg))
    losses: list[float] = []
    tokens_seen = 0
    elapsed = 0.0
    start_step = 0

    ckpts = _checkpoints(out) if resume else []
    if ckpts:
        step, cdir = ckpts[-1]
        state = json.loads((cdir / "state.json").read_text(encoding="utf-8"))
        if state.get("key") != key:
            raise ValueError(
                f"checkpoint {cdir} was written by another configuration or dataset; "
                f"pass another --out, or resume=False / --no-resume to start over"
            )
        model.load_state_dict(_load_checkpoint_file(cdir / "model.pt", device))
        opt.load_state_dict(_load_checkpoint_file(cdir / "optimizer.pt", device))
        sched.load_state_dict(_load_checkpoint_file(cdir / "scheduler.pt"))
        rng = _load_checkpoint_file(cdir / "rng.pt")
        torch.set_rng_state(rng["torch"])
        if "cuda" in rng and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        losses = list(state["losses"])
        tokens_seen = int(state["tokens"])
        elapsed = float(state["seconds"])
        start_step = step
        say(f"resumed from {cdir} (step {step})")
    elif not resume and (out / "checkpoints").exists():
        shutil.rmtree(out / "checkpoints")

    def save_checkpoint(step: int) -> None:
        def write(tmp: Path) -> None:
            torch.save(model.state_dict(), tmp / "model.pt")
            torch.save(opt.state_dict(), tmp / "optimizer.pt")
            torch.save(sched.state_dict(), tmp / "scheduler.pt")
            torch.save(_rng_state(), tmp / "rng.pt")
            write_json_atomic(
                tmp / "state.json",
                {
                    "step": step,
                    "key": key,
                    "losses": losses,
                    "tokens": tokens_seen,
                    "seconds": elapsed,
                },
            )

        _atomic_dir(out / "checkpoints" / f"step-{step}", write)
        for _s, p in _checkpoints(out)[: -max(1, cfg.keep_checkpoints)]:
            shutil.rmtree(p, ignore_errors=True)

    def manifest(status: str) -> dict[str, Any]:
        return {
            "status": status,
            "key": key,
            "config": asdict(cfg),
            "data": {
                **data_info,
                "kept": len(data),
                "dropped_no_response_token": data.n_dropped,
                "response_tokens": data.n_response_tokens,
            },
            "model": {"path": str(model_path), "gguf_file": gguf_file, "parameters": n_params},
            "kernels": patched,
            "device": str(device),
            "step": len(losses),
            "losses": losses,
            "tokens": tokens_seen,
            "seconds": round(elapsed, 3),
            "tokens_per_second": round(tokens_seen / elapsed, 1) if elapsed > 0 else None,
            "torch_threads": torch.get_num_threads(),
        }

    n_params = int(sum(p.numel() for p in model.parameters()))
    pad = tokenizer.pad_token_id
    bar = tqdm(
        total=cfg.steps,
        initial=start_step,
        desc="sft",
        unit="step",
        disable=not progress,
        dynamic_ncols=True,
    )
    step = start_step
    try:
        while step < cfg.steps:
            if stop_after is not None and step >= stop_after:
                break
            t0 = time.perf_counter()
            step_loss, step_tokens = 0.0, 0
            for a in range(cfg.grad_accum):
                idx = batch_of(step * cfg.grad_accum + a)
                batch = {k: v.to(device) for k, v in collate(data, idx, pad).items()}
                loss = causal_lm_loss(model, batch, chunk_size=cfg.chunk_size) / cfg.grad_accum
                loss.backward()
                step_loss += float(loss.detach())
                step_tokens += int(batch["attention_mask"].sum())
            if cfg.max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            dt = time.perf_counter() - t0
            elapsed += dt
            tokens_seen += step_tokens
            losses.append(step_loss)
            bar.update(1)
            bar.set_postfix(loss=f"{step_loss:.4f}", tok_s=f"{step_tokens / max(dt, 1e-9):.0f}")
            if (
                step == cfg.steps
                or (cfg.save_every and step % cfg.save_every == 0)
                or step == stop_after
            ):
                save_checkpoint(step)
    finally:
        bar.close()
    if step < cfg.steps:
        man = manifest("interrupted")
        write_json_atomic(man_path, man)
        return man

    def write_model(tmp: Path) -> None:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)

    _atomic_dir(out / "model", write_model)
    man = manifest("finished")
    write_json_atomic(man_path, man)
    if cfg.keep_checkpoints == 0:
        shutil.rmtree(out / "checkpoints", ignore_errors=True)
    say(f"{out}: {step} steps, final loss {losses[-1]:.4f}, {man['tokens_per_second']} tokens/s")
    return man
