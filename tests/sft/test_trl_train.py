"""The TRL ``SFTTrainer`` path of ``tritondiv sft`` on a tiny Llama (CPU)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("trl")

from tritondiv.sft.data import IGNORE_INDEX, collate, encode_pairs  # noqa: E402
from tritondiv.sft.tiny import make_tiny_llama, synthetic_pairs  # noqa: E402
from tritondiv.sft.train import TrainConfig, load_model, train  # noqa: E402
from tritondiv.sft.trl_train import resolve_loss_kernels, response_loss_sum  # noqa: E402


@pytest.fixture(scope="module")
def pairs() -> tuple[list[str], list[str]]:
    return synthetic_pairs(48, seed=3)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory, pairs) -> Path:
    ins, res = pairs
    return make_tiny_llama(tmp_path_factory.mktemp("tiny") / "model", ins + res, seed=0)


def _cfg(**kw) -> TrainConfig:
    base = dict(steps=6, batch_size=4, lr=3e-3, max_length=64, save_every=3, seed=5)
    base.update(kw)
    return TrainConfig(**base)


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


@pytest.fixture(scope="module")
def full_run(tmp_path_factory: pytest.TempPathFactory, tiny, pairs) -> Path:
    out = tmp_path_factory.mktemp("trl") / "full"
    train(tiny, pairs, out, _cfg(), progress=False)
    return out


def test_trl_trains_with_a_falling_loss(full_run) -> None:
    man = json.loads((full_run / "sft_manifest.json").read_text())
    assert man["trainer"] == "trl" and man["status"] == "finished" and man["step"] == 6
    losses = man["losses"]
    assert len(losses) == 6
    assert losses[-1] < losses[0] - 0.2
    assert man["kernels"]["kernels"] == "torch" and man["kernels"]["gather_response"] is False
    assert (full_run / "model" / "config.json").is_file()
    assert (full_run / "model" / "tokenizer.json").is_file()
    # no temporary folder is left beside the model
    assert not [p for p in full_run.iterdir() if p.name.startswith(".")]


def test_trl_resume_is_bit_identical(tmp_path, tiny, pairs, full_run) -> None:
    out = tmp_path / "split"
    half = train(tiny, pairs, out, _cfg(), progress=False, stop_after=3)
    assert half["status"] == "interrupted" and half["step"] == 3
    assert (out / "checkpoints" / "checkpoint-3").is_dir() and not (out / "model").exists()
    done = train(tiny, pairs, out, _cfg(), progress=False)
    assert done["status"] == "finished"
    full = json.loads((full_run / "sft_manifest.json").read_text())
    assert done["losses"] == full["losses"]
    assert done["seconds"] >= half["seconds"] and done["tokens"] > half["tokens"] > 0
    wa, wb = _weights(full_run / "model"), _weights(out / "model")
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k
    # a finished run with the same configuration is not redone
    again = train(tiny, pairs, out, _cfg(), progress=False)
    assert again["seconds"] == done["seconds"]


def test_trl_refuses_to_resume_another_configuration(tmp_path, tiny, pairs) -> None:
    out = tmp_path / "o"
    train(tiny, pairs, out, _cfg(steps=4, save_every=2), progress=False, stop_after=2)
    with pytest.raises(ValueError, match="another configuration"):
        train(tiny, pairs, out, _cfg(steps=4, save_every=2, lr=1e-3), progress=False)
    man = train(tiny, pairs, out, _cfg(steps=2, lr=1e-3), progress=False, resume=False)
    assert man["status"] == "finished" and man["step"] == 2


def test_response_gather_gives_the_same_loss_as_the_full_logits(tiny, pairs) -> None:
    model, tok = load_model(tiny)
    model.eval()
    data = encode_pairs(tok, pairs[0][:6], pairs[1][:6], max_length=64)
    batch = collate(data, list(range(6)), tok.pad_token_id)
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        # reference: full logits, shift by one, response targets only
        lg = logits[:, :-1].reshape(-1, logits.shape[-1]).double()
        tg = batch["labels"][:, 1:].reshape(-1)
        keep = tg != IGNORE_INDEX
        ref = torch.nn.functional.cross_entropy(lg[keep], tg[keep], reduction="sum")
        plain = response_loss_sum(model, batch, kernels="torch", gather=False)
        gathered = response_loss_sum(model, batch, kernels="torch", gather=True)
        own = response_loss_sum(model, batch, kernels="tritondiv")
    assert int(keep.sum()) > 0
    for v in (plain, gathered, own):
        assert float(v) == pytest.approx(float(ref), rel=1e-5)
    with pytest.raises(ValueError, match="kernels"):
        response_loss_sum(model, batch, kernels="cuda")


def test_gather_and_lora_train_through_the_trainer(tmp_path, tiny, pairs) -> None:
    g = train(
        tiny,
        pairs,
        tmp_path / "g",
        _cfg(steps=3, extra={"gather_response": True}),
        progress=False,
    )
    assert g["status"] == "finished" and g["kernels"]["gather_response"] is True
    assert all(v == v and v > 0 for v in g["losses"])  # finite, positive
    lo = train(
        tiny,
        pairs,
        tmp_path / "l",
        _cfg(steps=3, lr=1e-2, extra={"lora_r": 4, "lora_alpha": 8}),
        progress=False,
    )
    assert lo["status"] == "finished"
    assert 0 < lo["model"]["trainable_parameters"] < lo["model"]["parameters"]
    assert (tmp_path / "l" / "adapter" / "adapter_config.json").is_file()
    merged, _ = load_model(tmp_path / "l" / "model")  # a plain model: the adapter is merged
    assert type(merged).__name__ == "LlamaForCausalLM"
    base = _weights(tiny)
    after = _weights(tmp_path / "l" / "model")
    assert set(after) == set(base)
    changed = [k for k in base if not torch.equal(base[k], after[k])]
    assert changed and all("proj" in k for k in changed)  # only the LoRA-wrapped linears


def test_loss_kernel_switch() -> None:
    assert resolve_loss_kernels("auto", cuda=False) == "torch"
    assert resolve_loss_kernels("triton", cuda=False) == "tritondiv"
    with pytest.raises(ValueError, match="needs CUDA"):
        resolve_loss_kernels("liger", cuda=False)
    with pytest.raises(ValueError, match="kernels must be"):
        resolve_loss_kernels("fast")
    with pytest.raises(ValueError, match="trainer must be"):
        TrainConfig(trainer="mine").check()
    with pytest.raises(ValueError, match="for trainer='trl'"):
        train("unused", (["q"], ["a"]), "unused-out", TrainConfig(trainer="own", kernels="liger"))


def test_cli_options_reach_the_trainer_config() -> None:
    from tritondiv.cli import build_parser
    from tritondiv.commands.sft import config_from_args

    parser = build_parser()
    base = ["sft", "data.jsonl", "--model", "m", "--out", "o"]
    cfg = config_from_args(parser.parse_args(base))
    assert cfg.trainer == "trl" and cfg.kernels == "auto" and cfg.extra == {}
    cfg = config_from_args(
        parser.parse_args(
            [*base, "--gather-response", "--lora-r", "8", "--lora-targets", "q_proj,v_proj"]
        )
    )
    assert cfg.extra == {
        "gather_response": True,
        "lora_r": 8,
        "lora_alpha": 16,
        "lora_dropout": 0.0,
        "lora_targets": ["q_proj", "v_proj"],
    }
    own = parser.parse_args([*base, "--trainer", "own", "--kernels", "tritondiv"])
    assert config_from_args(own).trainer == "own"
    with pytest.raises(ValueError, match="need --trainer trl"):
        config_from_args(parser.parse_args([*base, "--trainer", "own", "--lora-r", "4"]))
    with pytest.raises(ValueError, match="--lora-r must be"):
        config_from_args(parser.parse_args([*base, "--lora-r", "-1"]))
