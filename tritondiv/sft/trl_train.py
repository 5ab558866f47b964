"""``tritondiv sft`` through TRL's ``SFTTrainer`` (the default trainer).

``out/`` after a run::

    out/model/                 the fine-tuned model + tokenizer (LoRA: merged into the model)
    out/adapter/               with LoRA, the adapter alone (peft ``save_pretrained``)
    out/checkpoints/checkpoint-N/   the transformers Trainer checkpoints (resume points)
    out/sft_manifest.json      config, data and model provenance, per-step losses, timings

The samples are tokenized by :func:`tritondiv.sft.data.encode_pairs` (the model's chat
template or the plain prompt format) and handed to TRL pre-tokenized with a
``completion_mask``, with ``completion_only_loss=True``: the loss counts response tokens
only. The run is seeded (``seed`` and ``data_seed``); ``train`` again on the same ``out``
resumes from the newest checkpoint through ``resume_from_checkpoint`` (which restores the
optimizer, scheduler, random state and data order) -- on a CPU the final weights are
bit-identical to an uninterrupted run. The final model (and adapter) are written into a
temporary folder beside their destination and renamed into place.

The loss (``kernels``):

- ``"auto"``: ``"liger"`` on CUDA when liger-kernel is installed, else ``"torch"``;
- ``"torch"``: TRL's own loss (plain torch, its chunked fused LM head);
- ``"liger"``: ``use_liger_kernel=True`` (Liger's RMSNorm, SwiGLU and RoPE) and the loss
  is Liger's fused linear cross-entropy on the last hidden states (:func:`sft_trainer_class`);
- ``"tritondiv"``: the project's own Triton kernels (:mod:`tritondiv.sft.patch`) and
  their fused loss (``"triton"`` is the same);

``gather_response=True`` (default off) puts the project's one idea in front of the fused
cross-entropy: the rows of the response tokens are gathered before the output head, so
the head and the cross-entropy never see prompt or padding rows. Without Liger (``"torch"``)
the gathered rows go through the head and a plain cross-entropy.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from tritondiv._io import write_json_atomic
from tritondiv.sft.data import IGNORE_INDEX, encode_pairs
from tritondiv.sft.train import MANIFEST, TrainConfig, _atomic_dir, load_model, training_pairs

__all__ = ["resolve_loss_kernels", "response_loss_sum", "sft_trainer_class", "train_trl"]

LOSS_KERNELS = ("auto", "torch", "liger", "tritondiv", "triton")


def _liger_available() -> bool:
    try:
        import liger_kernel.transformers  # type: ignore[import-untyped]  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_loss_kernels(kernels: str, *, cuda: bool | None = None) -> str:
    """``"auto"`` -> ``"liger"`` on CUDA with liger-kernel installed, else ``"torch"``;
    ``"triton"`` -> ``"tritondiv"``; other values checked."""
    if kernels not in LOSS_KERNELS:
        raise ValueError(f"kernels must be one of {LOSS_KERNELS}; got {kernels!r}")
    on_cuda = torch.cuda.is_available() if cuda is None else cuda
    if kernels == "auto":
        return "liger" if on_cuda and _liger_available() else "torch"
    if kernels == "triton":
        return "tritondiv"
    if kernels == "liger" and not on_cuda:
        raise ValueError("kernels='liger' needs CUDA (Liger's kernels are Triton GPU kernels)")
    if kernels == "liger" and not _liger_available():
        raise ValueError("kernels='liger' needs liger-kernel (pip install liger-kernel)")
    return kernels


def _shifted_targets(labels: torch.Tensor) -> torch.Tensor:
    """``labels[:, 1:]`` padded with ``IGNORE_INDEX``: the target of every position."""
    return torch.nn.functional.pad(labels[:, 1:], (0, 1), value=IGNORE_INDEX)


def _denominator(labels: torch.Tensor, num_items: Any) -> torch.Tensor:
    n = (_shifted_targets(labels) != IGNORE_INDEX).sum() if num_items is None else num_items
    return torch.as_tensor(n, device=labels.device).clamp(min=1)


def response_loss_sum(
    model: Any, inputs: dict[str, Any], *, kernels: str = "torch", gather: bool = False
) -> torch.Tensor:
    """The summed next-token cross-entropy of the response tokens of a batch
    (``input_ids``, ``attention_mask``, ``labels`` with ``IGNORE_INDEX`` outside the
    responses), from the decoder's last hidden states.

    ``gather``: only the rows whose target is a response token go through the output head
    (the response gather); ``kernels``: ``"liger"`` (Liger's fused linear cross-entropy),
    ``"tritondiv"`` (:func:`tritondiv.sft.patch.causal_lm_loss`) or ``"torch"`` (the head,
    then a plain cross-entropy). A peft model is unwrapped to its base model."""
    try:
        from peft import PeftModel
    except ImportError:  # pragma: no cover - peft is in the sft extra
        PeftModel = ()  # type: ignore[assignment,misc]
    core: Any = model.get_base_model() if isinstance(model, PeftModel) else model
    labels = inputs["labels"]
    if kernels == "tritondiv":
        from tritondiv.sft.patch import causal_lm_loss

        batch = {k: inputs[k] for k in ("input_ids", "attention_mask", "labels")}
        return causal_lm_loss(core, batch, reduction="sum")
    decoder = getattr(core, core.base_model_prefix)
    hidden = decoder(
        input_ids=inputs["input_ids"], attention_mask=inputs.get("attention_mask"), use_cache=False
    )[0]
    head = core.get_output_embeddings()
    h = hidden.reshape(-1, hidden.shape[-1])
    t = _shifted_targets(labels).reshape(-1)
    if gather:
        keep = (t != IGNORE_INDEX).nonzero().squeeze(1)
        h, t = h.index_select(0, keep), t.index_select(0, keep)
    if kernels == "liger":
        from liger_kernel.transformers import (  # type: ignore[import-untyped]
            LigerFusedLinearCrossEntropyLoss,
        )

        fl = LigerFusedLinearCrossEntropyLoss(ignore_index=IGNORE_INDEX, reduction="sum")
        return fl(head.weight, h, t, getattr(head, "bias", None))
    if kernels != "torch":
        raise ValueError(f"kernels must be 'torch', 'liger' or 'tritondiv'; got {kernels!r}")
    logits = head(h).float()
    return torch.nn.functional.cross_entropy(logits, t, ignore_index=IGNORE_INDEX, reduction="sum")


def _make_trainer_class() -> type:
    from trl import SFTTrainer

    class _Trainer(SFTTrainer):  # type: ignore[misc]
        """``SFTTrainer`` with the loss of ``loss_kernels`` and the response gather."""

        loss_kernels: str = "torch"
        gather_response: bool = False

        def compute_loss(
            self,
            model: Any,
            inputs: dict[str, Any],
            return_outputs: bool = False,
            num_items_in_batch: Any = None,
        ) -> Any:
            if self.loss_kernels == "torch" and not self.gather_response:
                return super().compute_loss(
                    model,
                    inputs,
                    return_outputs=return_outputs,
                    num_items_in_batch=num_items_in_batch,
                )
            loss = self._fused_loss(model, inputs, num_items_in_batch)
            if return_outputs:
                return loss, {"loss": loss}
            return loss

        def _fused_loss(self, model: Any, inputs: dict[str, Any], num_items: Any) -> torch.Tensor:
            core = model
            with contextlib.suppress(AttributeError):
                core = self.accelerator.unwrap_model(model)
            return response_loss_sum(
                core, inputs, kernels=self.loss_kernels, gather=self.gather_response
            ) / _denominator(inputs["labels"], num_items)

    _Trainer.__name__ = _Trainer.__qualname__ = "TritondivSFTTrainer"
    return _Trainer


_TRAINER_CLASS: type | None = None


def sft_trainer_class() -> type:
    """``TritondivSFTTrainer``: TRL's ``SFTTrainer`` with a ``compute_loss`` override
    (attributes ``loss_kernels`` and ``gather_response``; :func:`response_loss_sum`). Built
    on first use, so importing this module does not import trl."""
    global _TRAINER_CLASS
    if _TRAINER_CLASS is None:
        _TRAINER_CLASS = _make_trainer_class()
    return _TRAINER_CLASS


def _scheduler(cfg: TrainConfig) -> tuple[str, dict[str, Any]]:
    if cfg.schedule == "cosine":  # to 10% of lr, as the own loop
        return "cosine_with_min_lr", {"min_lr_rate": 0.1}
    if cfg.schedule == "linear":
        return "linear", {}
    return "constant_with_warmup", {}


def _stop_callback(stop_after: int | None) -> Any:
    from transformers import TrainerCallback

    class _Stop(TrainerCallback):  # type: ignore[misc]
        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> Any:
            if stop_after is not None and state.global_step >= stop_after:
                control.should_save = True
                control.should_training_stop = True
            return control

    return _Stop()


def _last_checkpoint(root: Path) -> Path | None:
    """The newest ``checkpoint-N`` whose ``trainer_state.json`` exists (the Trainer writes it
    last, so a folder without it is a half-written one)."""
    if not root.is_dir():
        return None
    found = []
    for p in root.iterdir():
        if p.name.startswith("checkpoint-") and (p / "trainer_state.json").is_file():
            with contextlib.suppress(ValueError):
                found.append((int(p.name.split("-", 1)[1]), p))
    return max(found)[1] if found else None


def train_trl(
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
    """Fine-tune the causal LM at ``model_path`` on ``dataset`` with TRL's ``SFTTrainer``
    and write ``out_dir`` (see the module docstring). Same signature and manifest as
    :func:`tritondiv.sft.train.train`; ``config.kernels`` is a :data:`LOSS_KERNELS` value,
    ``config.extra`` may hold ``gather_response`` (bool) and ``lora_r``, ``lora_alpha``,
    ``lora_dropout``, ``lora_targets`` (LoRA through peft when ``lora_r > 0``)."""
    from datasets import Dataset
    from trl import SFTConfig

    cfg = config or TrainConfig()
    cfg.check()
    extra = dict(cfg.extra)
    gather = bool(extra.get("gather_response", False))
    lora_r = int(extra.get("lora_r", 0) or 0)
    say = log or (lambda _m: None)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    instructions, responses, data_info = training_pairs(dataset)
    cuda = torch.cuda.is_available()
    loss_kernels = resolve_loss_kernels(cfg.kernels, cuda=cuda)
    key = {
        "trainer": "trl",
        "config": {**cfg.resume_key(), "extra": extra},
        "data": data_info,
        "model": str(model_path),
        "gguf_file": gguf_file,
    }
    man_path = out / MANIFEST
    old = json.loads(man_path.read_text(encoding="utf-8")) if man_path.is_file() else None
    if resume and old is not None:
        if old.get("status") == "finished" and old.get("key") == key and (out / "model").is_dir():
            say(f"{out}: finished earlier with the same configuration, skipped")
            return dict(old)
    ckpt_root = out / "checkpoints"
    last = _last_checkpoint(ckpt_root) if resume else None
    if last is not None and (old is None or old.get("key") != key):
        raise ValueError(
            f"checkpoint {last} was written by another configuration or dataset; "
            "pass another --out, or resume=False / --no-resume to start over"
        )
    if not resume and ckpt_root.exists():
        shutil.rmtree(ckpt_root)

    torch.manual_seed(cfg.seed)
    model, tokenizer = load_model(model_path, gguf_file=gguf_file, dtype=cfg.dtype)
    model.config.use_cache = False
    patched: dict[str, Any] = {"kernels": loss_kernels, "gather_response": gather}
    if loss_kernels == "tritondiv":
        from tritondiv.sft.patch import apply_fused_kernels

        if cuda:
            model.to("cuda")
        patched.update(apply_fused_kernels(model, "triton" if cuda else "torch"))
        patched["kernels"] = "tritondiv"
    data = encode_pairs(
        tokenizer, instructions, responses, max_length=cfg.max_length, template=cfg.template
    )
    if len(data) == 0:
        raise ValueError(f"no sample keeps a response token within max_length={cfg.max_length}")
    train_ds = Dataset.from_dict(
        {
            "input_ids": [x.tolist() for x in data.input_ids],
            "completion_mask": [
                (lab != IGNORE_INDEX).astype("int64").tolist() for lab in data.labels
            ],
        }
    )
    peft_config = None
    if lora_r > 0:
        from peft import LoraConfig

        peft_config = LoraConfig(
            r=lora_r,
            lora_alpha=int(extra.get("lora_alpha") or 2 * lora_r),
            lora_dropout=float(extra.get("lora_dropout", 0.0)),
            target_modules=extra.get("lora_targets") or "all-linear",
            task_type="CAUSAL_LM",
        )
    sched, sched_kw = _scheduler(cfg)
    dtype = next(model.parameters()).dtype
    args = SFTConfig(
        output_dir=str(ckpt_root),
        max_steps=cfg.steps,
        per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        learning_rate=cfg.lr,
        weight_decay=cfg.weight_decay,
        warmup_steps=cfg.warmup_steps,
        lr_scheduler_type=sched,
        lr_scheduler_kwargs=sched_kw,
        max_grad_norm=cfg.max_grad_norm if cfg.max_grad_norm > 0 else 0.0,
        seed=cfg.seed,
        data_seed=cfg.seed,
        save_strategy="steps",
        save_steps=cfg.save_every or cfg.steps,
        save_total_limit=max(1, cfg.keep_checkpoints),
        logging_steps=1,
        report_to=[],
        disable_tqdm=not progress,
        use_cpu=not cuda,
        bf16=cuda and dtype == torch.bfloat16,
        fp16=cuda and dtype == torch.float16,
        max_length=cfg.max_length,
        completion_only_loss=True,
        packing=False,
        dataset_num_proc=None,
        dataloader_num_workers=0,
        use_liger_kernel=loss_kernels == "liger",
        save_only_model=False,
        activation_checkpointing=bool(extra.get("activation_checkpointing", cuda)),
    )
    trainer_cls = sft_trainer_class()
    trainer = trainer_cls(
        model=model,
        args=args,
        train_dataset=train_ds,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=[_stop_callback(stop_after)],
    )
    trainer.loss_kernels = "tritondiv" if loss_kernels == "tritondiv" else loss_kernels
    trainer.gather_response = gather
    n_params = int(sum(p.numel() for p in trainer.model.parameters()))
    n_trainable = int(sum(p.numel() for p in trainer.model.parameters() if p.requires_grad))

    def manifest(status: str, losses: list[float], seconds: float, tokens: int) -> dict[str, Any]:
        return {
            "status": status,
            "trainer": "trl",
            "key": key,
            "config": asdict(cfg),
            "data": {
                **data_info,
                "kept": len(data),
                "dropped_no_response_token": data.n_dropped,
                "response_tokens": data.n_response_tokens,
            },
            "model": {
                "path": str(model_path),
                "gguf_file": gguf_file,
                "parameters": n_params,
                "trainable_parameters": n_trainable,
                "lora_r": lora_r,
            },
            "kernels": patched,
            "device": "cuda" if cuda else "cpu",
            "step": len(losses),
            "losses": losses,
            "tokens": tokens,
            "seconds": round(seconds, 3),
            "tokens_per_second": round(tokens / seconds, 1) if seconds > 0 else None,
            "torch_threads": torch.get_num_threads(),
            "versions": _versions(),
        }

    # the key goes on disk before the first checkpoint, so a resume can check it
    write_json_atomic(man_path, manifest("started", [], 0.0, 0))
    # a resumed run adds the time and tokens of the runs before it
    before = old if last is not None and old is not None else {}
    seconds0 = float(before.get("seconds") or 0.0)
    tokens0 = int(before.get("tokens") or 0)
    t0 = time.perf_counter()
    trainer.train(resume_from_checkpoint=str(last) if last is not None else None)
    seconds = seconds0 + time.perf_counter() - t0
    losses = [float(e["loss"]) for e in trainer.state.log_history if "loss" in e]
    tokens = tokens0 + int(getattr(trainer, "_total_train_tokens", 0) or 0)
    step = int(trainer.state.global_step)
    if step < cfg.steps:
        man = manifest("interrupted", losses, seconds, tokens)
        write_json_atomic(man_path, man)
        return man
    final = trainer.model
    if lora_r > 0:

        def write_adapter(tmp: Path) -> None:
            final.save_pretrained(tmp)

        _atomic_dir(out / "adapter", write_adapter)
        final = final.merge_and_unload()

    def write_model(tmp: Path) -> None:
        final.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)

    _atomic_dir(out / "model", write_model)
    man = manifest("finished", losses, seconds, tokens)
    write_json_atomic(man_path, man)
    if cfg.keep_checkpoints == 0:
        shutil.rmtree(ckpt_root, ignore_errors=True)
    say(f"{out}: {step} steps, final loss {losses[-1]:.4f}")
    return man


def _versions() -> dict[str, str | None]:
    from importlib.metadata import PackageNotFoundError, version

    got: dict[str, str | None] = {}
    for pkg in ("torch", "transformers", "trl", "peft", "liger-kernel"):
        try:
            got[pkg] = version(pkg)
        except PackageNotFoundError:
            got[pkg] = None
    return got
