"""Data formatting, batching, the trainer and ``tritondiv sft`` on a tiny Llama (CPU)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from tritondiv.pool import PoolError  # noqa: E402
from tritondiv.sft.data import (  # noqa: E402
    IGNORE_INDEX,
    PLAIN_TEMPLATE,
    collate,
    encode_pairs,
    length_grouped_batches,
    load_pairs,
)
from tritondiv.sft.tiny import make_tiny_llama, synthetic_pairs  # noqa: E402
from tritondiv.sft.train import TrainConfig, _atomic_dir, evaluate_loss, load_model, train  # noqa: E402

CHAT = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}</s>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


@pytest.fixture(scope="module")
def pairs() -> tuple[list[str], list[str]]:
    return synthetic_pairs(300, seed=1)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory, pairs) -> Path:
    ins, res = pairs
    return make_tiny_llama(tmp_path_factory.mktemp("tiny") / "model", ins + res, seed=0)


@pytest.fixture(scope="module")
def tokenizer(tiny: Path):
    return load_model(tiny)[1]


# ------------------------------------------------------------------------------ data
def test_plain_format_masks_the_prompt_exactly(tokenizer) -> None:
    data = encode_pairs(
        tokenizer, ["What is 2 plus 3?"], ["2 plus 3 is 5."], max_length=512, template="plain"
    )
    ids, lab = data.input_ids[0], data.labels[0]
    prompt = [
        tokenizer.bos_token_id,
        *tokenizer(
            PLAIN_TEMPLATE.format(instruction="What is 2 plus 3?"), add_special_tokens=False
        )["input_ids"],
    ]
    resp = tokenizer("2 plus 3 is 5." + tokenizer.eos_token, add_special_tokens=False)["input_ids"]
    assert ids.tolist() == prompt + resp
    assert (lab[: len(prompt)] == IGNORE_INDEX).all()
    assert lab[len(prompt) :].tolist() == resp
    assert resp[-1] == tokenizer.eos_token_id
    assert data.n_response_tokens == len(resp)


def test_chat_template_and_truncation(tokenizer) -> None:
    tokenizer.chat_template = CHAT
    try:
        data = encode_pairs(tokenizer, ["hi", "x " * 400], ["hello", "y"], max_length=32)
        decoded = tokenizer.decode(data.input_ids[0])
        assert decoded.startswith("<|user|>hi</s><|assistant|>")
        lab = data.labels[0]
        assert tokenizer.decode(lab[lab != IGNORE_INDEX]) == "hello</s>"
        # the long prompt leaves no response token within 32 tokens: dropped and counted
        assert len(data) == 1 and data.n_dropped == 1 and data.kept.tolist() == [0]
        with pytest.raises(ValueError, match="template"):
            encode_pairs(tokenizer, ["a"], ["b"], template="other")
    finally:
        tokenizer.chat_template = None
    with pytest.raises(ValueError, match="no chat template"):
        encode_pairs(tokenizer, ["a"], ["b"], template="chat")
    with pytest.raises(ValueError, match="max_length"):
        encode_pairs(tokenizer, ["a"], ["b"], max_length=1)


def test_length_grouped_batches_cover_every_sample_once_and_are_seeded() -> None:
    lengths = np.random.default_rng(0).integers(1, 100, 1000)
    b0 = length_grouped_batches(lengths, 8, seed=3, epoch=0, mega=4)
    flat = np.concatenate(b0)
    assert sorted(flat.tolist()) == list(range(1000))
    assert all(len(b) == 8 for b in b0)
    again = length_grouped_batches(lengths, 8, seed=3, epoch=0, mega=4)
    assert all(np.array_equal(a, b) for a, b in zip(b0, again, strict=True))
    other = length_grouped_batches(lengths, 8, seed=3, epoch=1, mega=4)
    assert not all(np.array_equal(a, b) for a, b in zip(b0, other, strict=True))
    # grouped: less padding than random batches of the same size
    pad = sum(int(lengths[b].max() * len(b) - lengths[b].sum()) for b in b0)
    perm = np.random.default_rng(0).permutation(1000)
    rand_pad = sum(int(lengths[b].max() * len(b) - lengths[b].sum()) for b in np.split(perm, 125))
    assert pad < rand_pad / 2
    with pytest.raises(ValueError, match="batch_size"):
        length_grouped_batches(lengths, 0, seed=0, epoch=0)


def test_collate_pads_right_and_masks(tokenizer) -> None:
    data = encode_pairs(tokenizer, ["a", "a much longer instruction"], ["b", "c"])
    batch = collate(data, np.array([0, 1]), pad_id=tokenizer.pad_token_id)
    n0 = len(data.input_ids[0])
    assert batch["attention_mask"][0].sum() == n0
    assert (batch["input_ids"][0, n0:] == tokenizer.pad_token_id).all()
    assert (batch["labels"][0, n0:] == IGNORE_INDEX).all()


@pytest.mark.shared_data
def test_real_data_labels_cover_exactly_the_responses(shared_data: Path, tokenizer) -> None:
    with gzip.open(shared_data / "gsm8k_train.jsonl.gz", "rt", encoding="utf-8") as fh:
        rows = [json.loads(next(fh)) for _ in range(50)]
    ins = [r["question"] for r in rows]
    res = [r["answer"] for r in rows]
    data = encode_pairs(tokenizer, ins, res, max_length=4096, template="plain")
    assert len(data) == 50 and data.n_dropped == 0
    for i in range(50):
        lab = data.labels[i]
        assert tokenizer.decode(lab[lab != IGNORE_INDEX]) == res[i] + tokenizer.eos_token


def test_load_pairs_reads_a_dataset_folder(tmp_path: Path) -> None:
    d = tmp_path / "level-0"
    d.mkdir()
    (d / "data.jsonl").write_text(
        "\n".join(
            json.dumps({"instruction": f"q{i}", "input": "", "output": f"a{i}"}) for i in range(3)
        )
        + "\n"
    )
    ins, res = load_pairs(d)
    assert ins == ["q0", "q1", "q2"] and res == ["a0", "a1", "a2"]
    # a dataset selected from a multi-source pool mixes record formats
    mixed = tmp_path / "mixed.jsonl"
    rows = [
        {"instruction": "q0", "input": "x", "output": "a0"},
        {"instruction": "q1", "input": "", "response": "a1"},
        {"question": "q2", "answer": "a2"},
    ]
    mixed.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert load_pairs(mixed) == (["q0\nx", "q1", "q2"], ["a0", "a1", "a2"])
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"instruction": "q"}) + "\n")
    with pytest.raises(PoolError, match=r"bad\.jsonl, line 1"):
        load_pairs(bad)


# --------------------------------------------------------------------------- trainer
def _cfg(**kw) -> TrainConfig:
    base = dict(
        steps=20,
        batch_size=8,
        lr=3e-3,
        warmup_steps=2,
        save_every=10,
        kernels="torch",
        seed=7,
        trainer="own",
    )
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def run_a(tiny, pairs, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("run") / "a"
    return out, train(tiny, pairs, out, _cfg(), progress=False)


def test_twenty_steps_lower_the_loss_and_resume_replays_the_same_losses(
    tiny, pairs, tmp_path, run_a
) -> None:
    a_dir, full = run_a
    losses = full["losses"]
    assert full["status"] == "finished" and len(losses) == 20
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 0.5
    model, _ = load_model(a_dir / "model")
    assert sorted(p.name for p in (a_dir / "checkpoints").iterdir()) == ["step-10", "step-20"]
    assert not [p for p in a_dir.rglob(".*") if ".tmp-" in p.name or ".old-" in p.name]

    # the same run, interrupted after step 10 then resumed from its checkpoint
    part = train(tiny, pairs, tmp_path / "b", _cfg(), progress=False, stop_after=10)
    assert part["status"] == "interrupted" and len(part["losses"]) == 10
    assert not (tmp_path / "b" / "model").exists()
    seen: list[str] = []
    resumed = train(tiny, pairs, tmp_path / "b", _cfg(), progress=False, log=seen.append)
    assert any("resumed from" in m and "step-10" in m for m in seen)
    assert resumed["losses"] == losses  # bit-identical, step for step
    m2, _ = load_model(tmp_path / "b" / "model")
    for (n1, p1), (_n2, p2) in zip(model.named_parameters(), m2.named_parameters(), strict=True):
        assert torch.equal(p1, p2), n1

    # a finished run is not redone; another configuration refuses to resume
    seen.clear()
    again = train(tiny, pairs, tmp_path / "b", _cfg(), progress=False, log=seen.append)
    assert again["losses"] == losses and any("skipped" in m for m in seen)
    with pytest.raises(ValueError, match="another configuration"):
        train(tiny, pairs, tmp_path / "b", _cfg(lr=1e-3), progress=False)


def test_evaluate_loss_drops_after_training(tiny, pairs, run_a, tokenizer) -> None:
    ins, res = pairs
    data = encode_pairs(tokenizer, ins[:40], res[:40])
    before, _ = load_model(tiny)
    after, _ = load_model(run_a[0] / "model")
    e0 = evaluate_loss(before, data, batch_size=16)
    e1 = evaluate_loss(after, data, batch_size=16)
    assert e0["tokens"] == e1["tokens"] == data.n_response_tokens
    assert e1["loss"] < e0["loss"] - 0.5
    assert e1["perplexity"] == pytest.approx(np.exp(e1["loss"]))


def test_atomic_dir_leaves_destination_intact_on_failure(tmp_path) -> None:
    dest = tmp_path / "ckpt"
    _atomic_dir(dest, lambda d: (d / "x").write_text("one"))

    def boom(d: Path) -> None:
        (d / "x").write_text("two")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        _atomic_dir(dest, boom)
    assert (dest / "x").read_text() == "one"
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]


def test_config_is_checked() -> None:
    with pytest.raises(ValueError, match="steps"):
        _cfg(steps=0).check()
    with pytest.raises(ValueError, match="schedule"):
        _cfg(schedule="step").check()
    with pytest.raises(ValueError, match="kernels"):
        from tritondiv.sft.patch import resolve_kernels

        resolve_kernels("cuda")


def _cli(argv: list[str]) -> int:
    # this command's parser alone (the full CLI also loads other helpers' commands)
    import argparse

    from tritondiv.commands import sft

    parser = argparse.ArgumentParser(prog="tritondiv")
    sft.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_sft(tiny, pairs, tmp_path, capsys) -> None:
    ins, res = pairs
    data = tmp_path / "data.jsonl"
    data.write_text(
        "".join(
            json.dumps({"instruction": i, "response": r}) + "\n"
            for i, r in zip(ins, res, strict=True)
        )
    )
    rc = _cli(
        [
            "sft",
            str(data),
            "--model",
            str(tiny),
            "--out",
            str(tmp_path / "o"),
            "--steps",
            "3",
            "--batch-size",
            "4",
            "--lr",
            "1e-3",
            "--no-progress",
            "--kernels",
            "torch",
            "--keep-checkpoints",
            "0",
        ]
    )
    assert rc == 0
    assert (tmp_path / "o" / "model").is_dir() and not (tmp_path / "o" / "checkpoints").exists()
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["status"] == "finished" and summary["step"] == 3
    man = json.loads((tmp_path / "o" / "sft_manifest.json").read_text())
    assert man["data"]["samples"] == 300 and len(man["data"]["sha256"]) == 64
    assert man["kernels"]["kernels"] == "torch"
    with pytest.raises(ValueError, match="does not exist"):
        _cli(
            [
                "sft",
                str(tmp_path / "missing.jsonl"),
                "--model",
                str(tiny),
                "--out",
                str(tmp_path / "o2"),
            ]
        )
    with pytest.raises(FileNotFoundError, match="does not exist"):
        _cli(
            ["sft", str(data), "--model", str(tmp_path / "nomodel"), "--out", str(tmp_path / "o3")]
        )


class _Planted:
    """An object whose unpickling runs code (writes a marker file)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "code ran"))


def test_resume_refuses_a_planted_pickle(tiny, pairs, tmp_path) -> None:
    out = tmp_path / "run"
    part = train(tiny, pairs, out, _cfg(steps=4, save_every=2), progress=False, stop_after=2)
    assert part["status"] == "interrupted"
    rng = out / "checkpoints" / "step-2" / "rng.pt"
    # the saved random state is plain tensors: loadable without unpickling code
    state = torch.load(rng, weights_only=True)
    assert isinstance(state["torch"], torch.Tensor)
    marker = tmp_path / "marker"
    torch.save({"torch": _Planted(marker)}, rng)
    with pytest.raises(ValueError, match=r"rng\.pt is not a checkpoint file tritondiv wrote"):
        train(tiny, pairs, out, _cfg(steps=4, save_every=2), progress=False)
    assert not marker.exists()
