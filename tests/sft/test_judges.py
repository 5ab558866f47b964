"""The judge hook and the offline example judge (tritondiv.sft.judges)."""

from __future__ import annotations

import pytest

from tritondiv.sft.judges import load_judge, reference_f1_judge


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
