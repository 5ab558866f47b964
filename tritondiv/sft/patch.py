"""One switch for the fused kernels: ``kernels="auto" | "triton" | "torch"``.

- ``"triton"``: every Llama-family RMSNorm module (a ``weight`` and a
  ``variance_epsilon``/``eps``) and gated MLP (``gate_proj``/``up_proj``/``down_proj`` with
  a SiLU activation) of the model gets its ``forward`` replaced by the Triton kernels of
  :mod:`tritondiv.sft.triton_ops`, and the loss is the fused linear cross-entropy with
  the Triton CE step. Needs CUDA (or ``TRITON_INTERPRET=1`` for tests).
- ``"torch"``: the model is untouched; the loss is the same chunked, response-only
  cross-entropy in plain torch (:func:`tritondiv.sft.loss.response_loss`).
- ``"auto"``: ``"triton"`` when CUDA is available, else ``"torch"``.

In both cases :func:`causal_lm_loss` runs the decoder only (no logits) and feeds its last
hidden states to the chunked loss, so the full ``tokens x vocab`` logits never exist.
"""

from __future__ import annotations

import types
from typing import Any

import torch

from tritondiv.sft.loss import response_loss

__all__ = ["apply_fused_kernels", "causal_lm_loss", "resolve_kernels"]

KERNELS = ("auto", "triton", "torch")


def resolve_kernels(kernels: str) -> str:
    """``"auto"`` -> ``"triton"`` on CUDA else ``"torch"``; other values checked."""
    if kernels not in KERNELS:
        raise ValueError(f"kernels must be one of {KERNELS}; got {kernels!r}")
    if kernels == "auto":
        return "triton" if torch.cuda.is_available() else "torch"
    return kernels


def _rms_forward(self: Any, hidden_states: torch.Tensor) -> torch.Tensor:
    from tritondiv.sft.triton_ops import rms_norm

    eps = getattr(self, "variance_epsilon", None)
    if eps is None:
        eps = self.eps
    return rms_norm(hidden_states, self.weight, float(eps))


def _mlp_forward(self: Any, x: torch.Tensor) -> torch.Tensor:
    from tritondiv.sft.triton_ops import swiglu

    return self.down_proj(swiglu(self.gate_proj(x), self.up_proj(x)))


def _is_silu(act: Any) -> bool:
    return isinstance(act, torch.nn.SiLU) or type(act).__name__ in ("SiLU", "SiLUActivation")


def apply_fused_kernels(model: torch.nn.Module, kernels: str = "auto") -> dict[str, Any]:
    """Swap the Triton RMSNorm / SwiGLU into ``model`` (in place) when the switch says so.

    Returns ``{"kernels": resolved, "rmsnorm": n_patched, "swiglu": n_patched}``; the
    resolved choice is also stored on the model and used by :func:`causal_lm_loss`.
    """
    resolved = resolve_kernels(kernels)
    counts: dict[str, Any] = {"kernels": resolved, "rmsnorm": 0, "swiglu": 0}
    if resolved == "triton":
        import tritondiv.sft.triton_ops  # noqa: F401  (fail early when triton is missing)

        for module in model.modules():
            name = type(module).__name__
            if name.endswith("RMSNorm") and isinstance(
                getattr(module, "weight", None), torch.Tensor
            ):
                if getattr(module, "variance_epsilon", getattr(module, "eps", None)) is None:
                    continue
                # Gemma-style norms scale by (1 + weight): not this kernel's formula.
                if "Gemma" in name:
                    continue
                module.forward = types.MethodType(_rms_forward, module)
                counts["rmsnorm"] += 1
            elif all(
                hasattr(module, a) for a in ("gate_proj", "up_proj", "down_proj")
            ) and _is_silu(getattr(module, "act_fn", None)):
                module.forward = types.MethodType(_mlp_forward, module)
                counts["swiglu"] += 1
    model._tritondiv_kernels = resolved  # type: ignore[assignment]
    return counts


def causal_lm_loss(
    model: torch.nn.Module,
    batch: dict[str, torch.Tensor],
    *,
    chunk_size: int | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """Response-only loss of a transformers causal LM on a batch from
    :func:`tritondiv.sft.data.collate`, without the full logits.

    The decoder (``model.<base_model_prefix>``) gives the last hidden states; the output
    embedding (``model.get_output_embeddings()``) is the head. Models that transform
    their logits (soft-capping, logit scales) fall back to the plain full-logits loss.
    """
    kernels = getattr(model, "_tritondiv_kernels", None) or resolve_kernels("auto")
    cfg = getattr(model, "config", None)
    head: Any = model.get_output_embeddings()  # type: ignore[operator]  # nn.Module attribute
    special = any(
        getattr(cfg, a, None) not in (None, 1.0) for a in ("final_logit_softcapping", "logit_scale")
    )
    if head is None or special:
        out = model(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False
        )
        from tritondiv.sft.loss import IGNORE_INDEX, shift_labels

        logits = out.logits.float()
        target = shift_labels(batch["labels"])
        total = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), target.reshape(-1), reduction="sum"
        )
        n = int((target != IGNORE_INDEX).sum())
        return total if reduction == "sum" else total / max(n, 1)
    base = getattr(model, str(model.base_model_prefix))
    hidden = base(
        input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False
    )[0]
    weight = head.weight
    bias = getattr(head, "bias", None)
    if hidden.dtype != weight.dtype:
        hidden = hidden.to(weight.dtype)
    if kernels == "triton":
        from tritondiv.sft.triton_ops import fused_linear_cross_entropy

        return fused_linear_cross_entropy(
            hidden, weight, batch["labels"], bias=bias, chunk_size=chunk_size, reduction=reduction
        )
    return response_loss(
        hidden, weight, batch["labels"], bias=bias, chunk_size=chunk_size, reduction=reduction
    )
