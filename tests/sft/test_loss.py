"""The chunked response-only loss (plain torch) against the full-logits reference."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tritondiv.sft.loss import (  # noqa: E402
    IGNORE_INDEX,
    ce_chunk_torch,
    default_chunk_size,
    linear_cross_entropy,
    plain_response_loss,
    response_loss,
    shift_labels,
)


def _case(
    b: int,
    t: int,
    d: int,
    v: int,
    *,
    seed: int = 0,
    masked: float = 0.5,
    bias: bool = False,
    dtype: torch.dtype = torch.float32,
):
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(b, t, d, generator=g).to(dtype)
    weight = (torch.randn(v, d, generator=g) / d**0.5).to(dtype)
    labels = torch.randint(0, v, (b, t), generator=g)
    labels[torch.rand(b, t, generator=g) < masked] = IGNORE_INDEX
    bvec = (torch.randn(v, generator=g) * 0.1).to(dtype) if bias else None
    return hidden, weight, labels, bvec


def _grads(fn, hidden, weight, labels, bias, **kw):
    h = hidden.clone().requires_grad_(True)
    w = weight.clone().requires_grad_(True)
    b = None if bias is None else bias.clone().requires_grad_(True)
    loss = fn(h, w, labels, bias=b, **kw)
    (loss * 1.7).backward()  # a non-unit upstream gradient
    return loss.detach(), h.grad, w.grad, None if b is None else b.grad


@pytest.mark.parametrize("chunk", [1, 3, 7, 64, 1000])
@pytest.mark.parametrize("bias", [False, True])
def test_equals_plain_loss_and_gradients_fp32(chunk: int, bias: bool) -> None:
    hidden, weight, labels, b = _case(
        2, 13, 16, 37, seed=chunk, bias=bias
    )  # vocab 37: no chunk divides it
    ref = _grads(plain_response_loss, hidden, weight, labels, b)
    got = _grads(response_loss, hidden, weight, labels, b, chunk_size=chunk)
    for r, g in zip(ref, got, strict=True):
        if r is None:
            assert g is None
            continue
        torch.testing.assert_close(g, r, rtol=1e-5, atol=1e-6)


def test_sum_reduction_and_hand_computed_value() -> None:
    # One sequence [a, b, c]; only c is a response token: the loss is -log softmax(h_b W^T)[c].
    hidden = torch.tensor([[[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]]])
    weight = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    labels = torch.tensor([[IGNORE_INDEX, IGNORE_INDEX, 2]])
    logits = torch.tensor([0.0, 2.0, 2.0])
    expected = torch.logsumexp(logits, 0) - logits[2]
    got = response_loss(hidden, weight, labels, reduction="sum")
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(response_loss(hidden, weight, labels), expected)


def test_all_masked_rows_give_zero_loss_and_zero_gradients() -> None:
    hidden, weight, labels, b = _case(2, 5, 8, 11, bias=True)
    labels[:] = IGNORE_INDEX
    loss, gh, gw, gb = _grads(response_loss, hidden, weight, labels, b)
    assert float(loss) == 0.0
    assert (
        torch.count_nonzero(gh) == 0
        and torch.count_nonzero(gw) == 0
        and torch.count_nonzero(gb) == 0
    )
    # A partly masked batch: fully masked rows get exactly zero hidden gradient.
    hidden, weight, labels, _ = _case(3, 6, 8, 11, masked=0.0)
    labels[1] = IGNORE_INDEX
    _, gh, _, _ = _grads(response_loss, hidden, weight, labels, None, chunk_size=4)
    assert torch.count_nonzero(gh[1]) == 0
    assert torch.count_nonzero(gh[0, :-1]) > 0
    assert torch.count_nonzero(gh[:, -1]) == 0  # the last position predicts nothing


def test_only_gathered_rows_are_in_the_graph_and_no_grad_mode() -> None:
    hidden, weight, labels, _ = _case(2, 9, 8, 19)
    with torch.no_grad():
        a = response_loss(hidden, weight, labels, chunk_size=2)
    b = plain_response_loss(hidden, weight, labels)
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_bf16_within_stated_tolerance() -> None:
    # bf16 inputs, float32 accumulation: loss within 1e-2 relative, gradients within 2e-2
    # (bf16 has an 8-bit mantissa; the reference also runs its matmul in bf16).
    hidden, weight, labels, b = _case(2, 16, 32, 101, dtype=torch.bfloat16, bias=True)
    ref = _grads(plain_response_loss, hidden, weight, labels, b)
    got = _grads(response_loss, hidden, weight, labels, b, chunk_size=5)
    torch.testing.assert_close(got[0], ref[0], rtol=1e-2, atol=1e-2)
    for r, g in zip(ref[1:], got[1:], strict=True):
        assert g.dtype == torch.bfloat16
        torch.testing.assert_close(g.float(), r.float(), rtol=2e-2, atol=2e-3)


def test_ce_chunk_torch_gradient_is_softmax_minus_onehot() -> None:
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(4, 9, generator=g)
    targets = torch.tensor([0, 8, 3, 3])
    ref_loss = torch.nn.functional.cross_entropy(logits, targets, reduction="none")
    expected = torch.softmax(logits, -1) * 0.5
    expected[torch.arange(4), targets] -= 0.5
    work = logits.clone()
    loss = ce_chunk_torch(work, targets, 0.5, True)
    torch.testing.assert_close(loss, ref_loss)
    torch.testing.assert_close(work, expected)
    work = logits.clone()
    ce_chunk_torch(work, targets, 0.5, False)
    assert torch.equal(work, logits)


def test_shift_and_chunk_defaults() -> None:
    lab = torch.tensor([[1, 2, 3], [4, 5, 6]])
    assert shift_labels(lab).tolist() == [[2, 3, IGNORE_INDEX], [5, 6, IGNORE_INDEX]]
    assert default_chunk_size(49_152) == 128
    assert default_chunk_size(32_000) == 256
    assert default_chunk_size(10) >= 16


def test_errors_name_the_problem() -> None:
    hidden, weight, labels, _ = _case(1, 4, 8, 10)
    with pytest.raises(ValueError, match="targets shape"):
        linear_cross_entropy(hidden, weight, labels[:, :3])
    with pytest.raises(ValueError, match="weight must be"):
        linear_cross_entropy(hidden, weight[:, :4], labels)
    with pytest.raises(TypeError, match="dtype"):
        linear_cross_entropy(hidden, weight.double(), labels)
    with pytest.raises(ValueError, match="reduction"):
        linear_cross_entropy(hidden, weight, labels, reduction="none")
    with pytest.raises(ValueError, match="chunk_size"):
        linear_cross_entropy(hidden, weight, labels, chunk_size=0)
    bad = labels.clone()
    bad[0, 0] = 10
    with pytest.raises(ValueError, match=r"\[0, 10\)"):
        linear_cross_entropy(hidden, weight, bad)


@settings(max_examples=25, deadline=None)
@given(
    b=st.integers(1, 3),
    t=st.integers(1, 9),
    v=st.integers(2, 40),
    chunk=st.integers(1, 12),
    masked=st.sampled_from([0.0, 0.5, 1.0]),
    seed=st.integers(0, 1000),
)
def test_property_chunking_never_changes_the_loss(b, t, v, chunk, masked, seed) -> None:
    hidden, weight, labels, _ = _case(b, t, 6, v, seed=seed, masked=masked)
    ref = _grads(plain_response_loss, hidden, weight, labels, None)
    got = _grads(response_loss, hidden, weight, labels, None, chunk_size=chunk)
    for r, g in zip(ref[:3], got[:3], strict=True):
        torch.testing.assert_close(g, r, rtol=1e-5, atol=1e-6)
