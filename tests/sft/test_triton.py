"""Triton kernels of the SFT path under ``TRITON_INTERPRET=1``, against torch references.

The interpreter runs the ``@triton.jit`` kernels on CPU tensors; it must be switched on
before the kernel module is imported (``triton.jit`` reads the variable at definition),
so this file imports ``tritondiv.sft.triton_ops`` fresh with the variable set and checks
the kernels really are interpreted. Small shapes; vocabulary / width / length never a
multiple of the tile so the masked tails are exercised.
"""

from __future__ import annotations

import importlib
import sys

import pytest

torch = pytest.importorskip("torch")


def _load_interpreted():
    triton = pytest.importorskip("triton")
    from triton.runtime.interpreter import InterpretedFunction

    if not isinstance(triton.language.standard.sigmoid, InterpretedFunction):
        # triton was imported earlier in this session without the interpreter: re-import it
        for name in [m for m in sys.modules if m == "triton" or m.startswith("triton.")]:
            del sys.modules[name]
    sys.modules.pop("tritondiv.sft.triton_ops", None)
    return importlib.import_module("tritondiv.sft.triton_ops")


ops = _load_interpreted()

from tritondiv.sft.loss import IGNORE_INDEX, plain_response_loss  # noqa: E402

F = torch.nn.functional


def test_kernels_really_are_interpreted() -> None:
    from triton.runtime.interpreter import InterpretedFunction

    assert ops.INTERPRETED
    for k in (
        ops._ce_kernel,
        ops._rmsnorm_fwd_kernel,
        ops._rmsnorm_bwd_kernel,
        ops._swiglu_fwd_kernel,
    ):
        assert isinstance(k, InterpretedFunction)


# ----------------------------------------------------------------------------- CE step
@pytest.mark.parametrize(("vocab", "block"), [(37, 16), (101, 32), (130, 128), (5, 1024)])
def test_ce_step_loss_and_gradient_fp32(vocab: int, block: int) -> None:
    g = torch.Generator().manual_seed(vocab)
    logits = torch.randn(6, vocab, generator=g) * 3
    targets = torch.randint(0, vocab, (6,), generator=g)
    targets[2] = IGNORE_INDEX
    scale = 0.25
    ref_loss = F.cross_entropy(logits, targets, reduction="none", ignore_index=IGNORE_INDEX)
    ref_grad = torch.softmax(logits, -1)
    ref_grad[torch.arange(6), targets.clamp(min=0)] -= 1.0
    ref_grad *= scale
    ref_grad[2] = 0.0  # ignored row: zero gradient
    work = logits.clone()
    loss = ops.ce_chunk_triton(work, targets, scale, True, block_v=block)
    torch.testing.assert_close(loss, ref_loss, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(work, ref_grad, rtol=1e-5, atol=1e-7)
    work = logits.clone()
    ops.ce_chunk_triton(work, targets, scale, False, block_v=block)
    assert torch.equal(work, logits)  # no gradient requested: logits untouched


def test_ce_step_all_rows_ignored_and_input_checks() -> None:
    logits = torch.randn(3, 10)
    targets = torch.full((3,), IGNORE_INDEX)
    work = logits.clone()
    loss = ops.ce_chunk_triton(work, targets, 1.0, True, block_v=4)
    assert torch.count_nonzero(loss) == 0 and torch.count_nonzero(work) == 0
    with pytest.raises(TypeError, match="float32"):
        ops.ce_chunk_triton(logits.double(), targets, 1.0, True)
    with pytest.raises(ValueError, match="contiguous"):
        ops.ce_chunk_triton(torch.randn(10, 3).t(), targets, 1.0, True)


# ----------------------------------------------------------------- fused linear CE
def _lm_case(dtype, *, seed=0, v=53, masked=0.4, bias=True):
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(2, 11, 16, generator=g).to(dtype)
    weight = (torch.randn(v, 16, generator=g) / 4).to(dtype)
    labels = torch.randint(0, v, (2, 11), generator=g)
    labels[torch.rand(2, 11, generator=g) < masked] = IGNORE_INDEX
    b = (torch.randn(v, generator=g) * 0.1).to(dtype) if bias else None
    return hidden, weight, labels, b


def _run(fn, hidden, weight, labels, bias, **kw):
    h = hidden.clone().requires_grad_(True)
    w = weight.clone().requires_grad_(True)
    b = None if bias is None else bias.clone().requires_grad_(True)
    loss = fn(h, w, labels, bias=b, **kw)
    (loss * 0.9).backward()
    return [loss.detach(), h.grad, w.grad] + ([] if b is None else [b.grad])


@pytest.mark.parametrize(("chunk", "block"), [(4, 16), (7, 64), (64, 32)])
def test_fused_linear_ce_fp32_matches_torch(chunk: int, block: int) -> None:
    case = _lm_case(torch.float32, seed=chunk)
    ref = _run(plain_response_loss, *case)
    got = _run(ops.fused_linear_cross_entropy, *case, chunk_size=chunk, block_v=block)
    for r, g in zip(ref, got, strict=True):
        torch.testing.assert_close(g, r, rtol=1e-5, atol=1e-6)


def test_fused_linear_ce_bf16_within_stated_tolerance() -> None:
    # bf16: loss within 1e-2 relative; gradients within 2e-2 relative / 2e-3 absolute.
    case = _lm_case(torch.bfloat16, seed=5)
    ref = _run(plain_response_loss, *case)
    got = _run(ops.fused_linear_cross_entropy, *case, chunk_size=5, block_v=16)
    torch.testing.assert_close(got[0], ref[0], rtol=1e-2, atol=1e-2)
    for r, g in zip(ref[1:], got[1:], strict=True):
        assert g.dtype == torch.bfloat16
        torch.testing.assert_close(g.float(), r.float(), rtol=2e-2, atol=2e-3)


def test_fused_linear_ce_all_masked_rows() -> None:
    hidden, weight, labels, b = _lm_case(torch.float32, masked=0.0)
    labels[0] = IGNORE_INDEX  # one whole sequence masked
    ref = _run(plain_response_loss, hidden, weight, labels, b)
    got = _run(ops.fused_linear_cross_entropy, hidden, weight, labels, b, chunk_size=3, block_v=16)
    for r, g in zip(ref, got, strict=True):
        torch.testing.assert_close(g, r, rtol=1e-5, atol=1e-6)
    assert torch.count_nonzero(got[1][0]) == 0
    labels[:] = IGNORE_INDEX  # everything masked: zero loss, zero gradients
    got = _run(ops.fused_linear_cross_entropy, hidden, weight, labels, b)
    assert all(torch.count_nonzero(t) == 0 for t in got)


# ------------------------------------------------------------------------- RMSNorm
def _rms_ref(x, w, eps):
    # transformers' LlamaRMSNorm.forward
    dt = x.dtype
    h = x.float()
    h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps)
    return w * h.to(dt)


@pytest.mark.parametrize(
    ("dtype", "rtol", "atol"), [(torch.float32, 1e-5, 1e-5), (torch.bfloat16, 2e-2, 2e-2)]
)
@pytest.mark.parametrize("shape", [(1, 48), (3, 5, 48), (7, 100)])
def test_rmsnorm_forward_and_gradients(dtype, rtol, atol, shape) -> None:
    g = torch.Generator().manual_seed(len(shape))
    x = torch.randn(*shape, generator=g).to(dtype)
    w = (1 + 0.1 * torch.randn(shape[-1], generator=g)).to(dtype)
    dy = torch.randn(*shape, generator=g).to(dtype)
    out = []
    for fn in (_rms_ref, ops.rms_norm):
        xx, ww = x.clone().requires_grad_(True), w.clone().requires_grad_(True)
        y = fn(xx, ww, 1e-6)
        y.backward(dy)
        out.append((y.detach(), xx.grad, ww.grad))
    for r, k in zip(out[0], out[1], strict=True):
        assert k.dtype == dtype and k.shape == r.shape
        # the weight gradient sums over rows: compare it relative to its scale
        torch.testing.assert_close(
            k.float(), r.float(), rtol=rtol, atol=atol * max(1.0, float(r.float().abs().max()))
        )


# -------------------------------------------------------------------------- SwiGLU
@pytest.mark.parametrize(
    ("dtype", "rtol", "atol"), [(torch.float32, 1e-5, 1e-6), (torch.bfloat16, 1.6e-2, 1e-2)]
)
@pytest.mark.parametrize("shape", [(3, 7), (2, 1500), (1,)])
def test_swiglu_forward_and_gradients(dtype, rtol, atol, shape) -> None:
    g = torch.Generator().manual_seed(shape[-1])
    a = (torch.randn(*shape, generator=g) * 3).to(dtype)
    b = torch.randn(*shape, generator=g).to(dtype)
    dc = torch.randn(*shape, generator=g).to(dtype)
    out = []
    for fn in (lambda p, q: F.silu(p.float()) * q.float(), ops.swiglu):
        aa, bb = a.clone().requires_grad_(True), b.clone().requires_grad_(True)
        c = fn(aa, bb)
        c.backward(dc.to(c.dtype))
        out.append((c.detach(), aa.grad, bb.grad))
    for r, k in zip(out[0], out[1], strict=True):
        torch.testing.assert_close(k.float(), r.float().to(dtype).float(), rtol=rtol, atol=atol)
    with pytest.raises(ValueError, match="must match"):
        ops.swiglu(a, b[..., :0] if a.ndim else b)


@pytest.mark.gpu
def test_kernels_on_cuda() -> None:
    if not torch.cuda.is_available():
        pytest.skip(
            "needs a CUDA GPU (this machine has none; the kernels are checked interpreted above)"
        )
    case = [t.cuda() if t is not None else None for t in _lm_case(torch.float32)]
    ref = _run(plain_response_loss, *case)
    got = _run(ops.fused_linear_cross_entropy, *case)
    for r, g in zip(ref, got, strict=True):
        torch.testing.assert_close(g, r, rtol=1e-4, atol=1e-5)


# ------------------------------------------------------- patched into a transformers Llama
def test_patched_tiny_llama_matches_transformers_loss_and_gradients() -> None:
    transformers = pytest.importorskip("transformers")
    from tritondiv.sft.patch import apply_fused_kernels, causal_lm_loss

    cfg = transformers.LlamaConfig(
        vocab_size=97,
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
    )
    torch.manual_seed(0)
    ref_model = transformers.LlamaForCausalLM(cfg)
    fused = transformers.LlamaForCausalLM(cfg)
    fused.load_state_dict(ref_model.state_dict())
    counts = apply_fused_kernels(fused, "triton")
    assert counts == {"kernels": "triton", "rmsnorm": 2 * 2 + 1, "swiglu": 2}
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, 97, (2, 9), generator=g)
    labels = ids.clone()
    labels[:, :4] = IGNORE_INDEX  # prompt
    labels[1, 7:] = IGNORE_INDEX  # padding
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    ref = ref_model(input_ids=ids, attention_mask=mask, labels=labels).loss
    ref.backward()
    got = causal_lm_loss(
        fused, {"input_ids": ids, "attention_mask": mask, "labels": labels}, chunk_size=3
    )
    got.backward()
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)
    for (name, p_ref), (_, p_got) in zip(
        ref_model.named_parameters(), fused.named_parameters(), strict=True
    ):
        torch.testing.assert_close(p_got.grad, p_ref.grad, rtol=1e-4, atol=1e-6, msg=name)
