"""The judge hook and the offline example judge (tritondiv.sft.judges)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tritondiv.sft.judges import (
    JUDGE_TEMPLATE,
    LMJudge,
    length_controlled_win_rate,
    load_judge,
    reference_f1_judge,
    win_tie_loss,
)


def test_judges() -> None:
    assert reference_f1_judge(
        ["q", "q", "q"], ["a b c", "x", "a"], ["x", "a b c", "a"], ["a b c"] * 3
    ) == [1.0, 0.0, 0.5]
    fn = load_judge("tritondiv.sft.experiment:reference_f1_judge")
    assert fn is reference_f1_judge
    with pytest.raises(ValueError, match="module:function"):
        load_judge("no_colon")
    with pytest.raises(ValueError, match="cannot import"):
        load_judge("tritondiv.sft.experiment:nope")


# ------------------------------------------------------------ length-controlled win rate
def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def test_lc_win_rate_matches_a_hand_computed_table() -> None:
    # Two length groups of 5: candidate 100 characters longer (x = tanh(1) after scaling,
    # the differences are +-100 so sd = 100) or 100 shorter. Longer: 4 wins of 5 (p+ = 0.8);
    # shorter: 1 win, 2 ties, 2 losses (p- = 0.4). The fit is saturated, so
    # sigmoid(t0 + t1 x) = 0.8 and sigmoid(t0 - t1 x) = 0.4, hence
    # t0 = (logit 0.8 + logit 0.4) / 2 = (ln 4 + ln(2/3)) / 2 and LC = sigmoid(t0).
    prefs = [1, 1, 1, 1, 0, 1, 0.5, 0.5, 0, 0]
    cand = [300] * 5 + [100] * 5
    base = [200] * 10
    got = length_controlled_win_rate(prefs, cand, base, l2=0.0)
    t0 = (math.log(4.0) + math.log(2.0 / 3.0)) / 2.0
    assert got["win_rate"] == pytest.approx(0.6)
    assert got["intercept"] == pytest.approx(t0, abs=1e-9)
    assert got["lc_win_rate"] == pytest.approx(_sigmoid(t0), abs=1e-9)  # 0.6202...
    assert got["length_coef"] == pytest.approx(
        (math.log(4.0) - math.log(2.0 / 3.0)) / 2.0 / math.tanh(1.0), abs=1e-9
    )
    assert got["length_sd"] == pytest.approx(100.0)
    # the default small penalty moves the rate a little, towards no length effect
    soft = length_controlled_win_rate(prefs, cand, base)
    assert abs(soft["lc_win_rate"] - got["lc_win_rate"]) < 5e-3


def test_lc_win_rate_edge_cases() -> None:
    # no length difference: the LC rate is the raw rate
    same = length_controlled_win_rate([1, 0, 0.5, 1], [5, 5, 5, 5], [5, 5, 5, 5], l2=0.0)
    assert same["lc_win_rate"] == pytest.approx(0.625) and same["length_sd"] == 0.0
    # all wins: nothing to regress
    allw = length_controlled_win_rate([1, 1], [9, 1], [1, 1])
    assert allw["lc_win_rate"] == 1.0 and allw["intercept"] is None
    # wins exactly when longer: the length explains all; the penalty keeps it finite
    sep = length_controlled_win_rate([1, 1, 0, 0], [9, 9, 1, 1], [5, 5, 5, 5])
    assert sep["lc_win_rate"] == pytest.approx(0.5, abs=1e-6)
    assert math.isfinite(sep["length_coef"]) and sep["length_coef"] > 1
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        length_controlled_win_rate([1.5], [1], [1])
    with pytest.raises(ValueError, match="one length"):
        length_controlled_win_rate([1, 0], [1], [1])
    assert win_tie_loss([1, 0.5, 0.5, 0]) == {"win": 1, "tie": 2, "loss": 1}


# ------------------------------------------------------------------------ the LM judge
@pytest.fixture(scope="module")
def judge(tmp_path_factory: pytest.TempPathFactory):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from tritondiv.sft.tiny import make_tiny_llama, synthetic_pairs

    ins, res = synthetic_pairs(60, seed=2)
    path = make_tiny_llama(
        tmp_path_factory.mktemp("judge") / "m", [*ins, *res, JUDGE_TEMPLATE], seed=4
    )
    return LMJudge(path, batch_size=2)


INS = ["What is 2 plus 3?", "Repeat the word apple twice.", "Reverse the words: a b c"]
GOOD = ["2 plus 3 is 5.", "apple apple", "c b a"]
BAD = ["It is 7, I think, or maybe something else entirely.", "pear", "a b c d e"]


def test_lm_judge_reads_both_orders(judge) -> None:
    import torch

    res = judge.compare(INS, GOOD, BAD)
    # reference: one prompt at a time, no padding, the softmax over the two label tokens
    tok, model = judge.tokenizer, judge.model
    ia, ib = judge._ids
    for k in range(len(INS)):
        for first, (a, b) in enumerate([(GOOD[k], BAD[k]), (BAD[k], GOOD[k])]):
            text = JUDGE_TEMPLATE.format(instruction=INS[k], a=a, b=b)
            ids = tok(text)["input_ids"] + judge._prefix
            with torch.no_grad():
                logits = model(input_ids=torch.tensor([ids])).logits[0, -1].double()
            pa = float(torch.softmax(logits[[ia, ib]], 0)[0])
            want = pa if first == 0 else 1.0 - pa
            got = res.p_first[k] if first == 0 else res.p_second[k]
            assert got == pytest.approx(want, abs=1e-5)
    assert np.allclose(res.preference, (res.p_first + res.p_second) / 2)
    # swapping candidate and baseline swaps wins and losses (position-swapped both ways)
    back = judge.compare(INS, BAD, GOOD)
    assert np.allclose(back.p_first, 1.0 - res.p_second, atol=1e-6)
    assert np.allclose(back.verdict, 1.0 - res.verdict)
    assert judge(INS, GOOD, BAD, GOOD) == [float(v) for v in res.verdict]


def test_lm_judge_ties_identical_answers(judge) -> None:
    # the same answer in both positions: the two orders are one prompt, so their
    # preferences for the candidate are p and 1 - p -- never both above one half
    res = judge.compare(INS, GOOD, GOOD)
    assert np.allclose(res.p_first + res.p_second, 1.0)
    assert list(res.verdict) == [0.5, 0.5, 0.5]
    assert res.counts() == {"win": 0, "tie": 3, "loss": 0}


def test_lm_judge_checks_its_inputs(judge) -> None:
    with pytest.raises(ValueError, match="instructions"):
        judge.compare(INS, GOOD[:2], BAD)
    with pytest.raises(ValueError, match="lacks"):
        LMJudge((judge.model, judge.tokenizer), template="no fields")
    with pytest.raises(ValueError, match="do not differ"):
        LMJudge((judge.model, judge.tokenizer), labels=("A", "A"))
