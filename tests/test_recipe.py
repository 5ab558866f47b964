"""Recipes (tritondiv.recipe): the whole recipe is checked before any work, and a recipe's
steps give the same outputs as the same commands run one by one."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tritondiv.cli import main
from tritondiv.commands._options import PoolArgs
from tritondiv.dataset import data_file, read_manifest
from tritondiv.recipe import STEP_KINDS, command_options, load_recipe, parse_recipe, run_recipe

REPO = Path(__file__).resolve().parents[1]
POOL = REPO / "examples" / "data"

RECIPE = """\
pool:
  source: {pool}
defaults:
  seed: 5
  metrics: false
  lo: 3
  hi: 0.5x
  progress: false
steps:
  - stats:
      component: both
      json: out/stats.json
  - select:
      strategy: response-micro
      level: 1
      size: 50
      out: out/micro-1
  - ladder:
      strategies: [instruction-micro]
      levels: 2
      size: 40
      no-report: true          # the report step writes it
      out: out/ladder
  - metrics:
      datasets: [out/micro-1, out/ladder/instruction-micro/level-0]
      no-embeddings: true
      bleu-sample: 30
      json: out/metrics.json
  - report:
      dir: out/ladder
"""


def _write(folder: Path, text: str, name: str = "recipe.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def _without(d: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k not in keys}


@pytest.mark.slow  # two reports (matplotlib): ~10 s each on a loaded machine
def test_every_step_kind_gives_what_the_commands_give_one_by_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    loads = []
    real_load = PoolArgs.load

    def counting_load(self: PoolArgs, **kwargs: Any) -> Any:
        loads.append(self.source)
        return real_load(self, **kwargs)

    monkeypatch.setattr(PoolArgs, "load", counting_load)
    recipe = load_recipe(_write(tmp_path / "r", RECIPE.format(pool=POOL)))
    lines: list[str] = []
    run_recipe(recipe, log=lines.append)
    assert loads == [str(POOL)]  # the pool is loaded once, shared by the three pool steps
    assert [line.split(" ")[:3] for line in lines if line.startswith("step ")] == [
        ["step", "1/5", "stats"],
        ["step", "2/5", "select"],
        ["step", "3/5", "ladder"],
        ["step", "4/5", "metrics"],
        ["step", "5/5", "report"],
    ]
    a = tmp_path / "r" / "out"  # relative paths resolved against the recipe's folder
    b = tmp_path / "cli"
    common = ["--seed", "5", "--lo", "3", "--hi", "0.5x", "--no-progress"]
    assert main(["stats", str(POOL), "--component", "both", "--json", str(b / "stats.json"),
                 "--lo", "3", "--hi", "0.5x", "--no-progress"]) == 0  # fmt: skip
    assert main(["select", str(POOL), "--strategy", "response-micro", "--level", "1",
                 "--size", "50", "--out", str(b / "micro-1"), "--no-metrics", *common]) == 0  # fmt: skip
    assert main(["ladder", str(POOL), "--strategies", "instruction-micro", "--levels", "2",
                 "--size", "40", "--out", str(b / "ladder"), "--no-metrics", "--no-report",
                 *common]) == 0  # fmt: skip
    assert main(["metrics", str(b / "micro-1"), str(b / "ladder/instruction-micro/level-0"),
                 "--no-embeddings", "--bleu-sample", "30", "--seed", "5",
                 "--json", str(b / "metrics.json")]) == 0  # fmt: skip
    assert main(["report", str(b / "ladder")]) == 0
    capsys.readouterr()

    def js(p: Path) -> Any:
        return json.loads(p.read_text(encoding="utf-8"))

    assert _without(js(a / "stats.json"), "seconds") == _without(js(b / "stats.json"), "seconds")
    datasets = ["micro-1", "ladder/instruction-micro/level-0", "ladder/instruction-micro/level-1"]
    for rel in datasets:
        assert data_file(a / rel).read_bytes() == data_file(b / rel).read_bytes(), rel
        assert _without(read_manifest(a / rel), "timings") == _without(
            read_manifest(b / rel), "timings"
        )
    ia, ib = read_manifest(a / "ladder/ladder.json"), read_manifest(b / "ladder/ladder.json")
    assert _without(ia, "timings", "seconds") == _without(ib, "timings", "seconds")
    ma, mb = js(a / "metrics.json")["datasets"], js(b / "metrics.json")["datasets"]
    assert [_without(m, "dataset") for m in ma] == [_without(m, "dataset") for m in mb]
    files = [sorted(p.name for p in (d / "ladder").iterdir()) for d in (a, b)]
    assert files[0] == files[1] and "report.html" in files[0]


def _bad(tmp_path: Path, text: str) -> str:
    path = _write(tmp_path, text)
    with pytest.raises(ValueError) as exc:
        load_recipe(path)
    assert not (tmp_path / "out").exists()  # nothing was written
    return str(exc.value)


GOOD_SELECT = "  - select: {{strategy: response-micro, level: 1, size: 20, out: out/a}}\n"


@pytest.mark.parametrize(
    "steps, wanted",
    [
        (  # a misspelt option: its name, the step, the line and what exists
            GOOD_SELECT + "  - select:\n      strategy: random\n      level: 1\n"
            "      sise: 20\n      out: out/b\n",
            ["step 2 (select), line 8", "unknown key 'sise'", "size", "strategy"],
        ),
        (
            GOOD_SELECT + "  - select: {{strategy: no-such, level: 1, size: 20, out: out/b}}\n",
            ["step 2 (select), line 5", "unknown strategy 'no-such'", "response-micro"],
        ),
        (
            GOOD_SELECT
            + "  - ladder: {{strategies: 'response-micro,nope', size: 20, out: out/b}}\n",
            ["step 2 (ladder), line 5", "unknown strategy", "nope"],
        ),
        (
            "  - select: {{strategy: random, level: 1, out: out/a}}\n",
            ["step 1 (select), line 4", "missing required option 'size'"],
        ),
        (
            GOOD_SELECT + "  - ladder: {{size: 20, strategies: random, out: out/a}}\n",
            ["step 2 (ladder)", "writes", "out/a", "step 1 (select) writes too"],
        ),
        (
            GOOD_SELECT + "  - metrics: {{datasets: [out/a, out/never]}}\n",
            ["step 2 (metrics), line 5", "out/never", "no earlier step writes"],
        ),
        (  # written by a later step only: not there yet when the report runs
            "  - report: {{dir: out/l}}\n  - ladder: {{size: 20, strategies: random, out: out/l}}\n",
            ["step 1 (report), line 4", "out/l", "no earlier step writes"],
        ),
        (
            "  - shuffle: {{size: 3}}\n",
            ["step 1, line 4", "unknown step 'shuffle'", "stats, select, ladder"],
        ),
        (
            "  - select: {{strategy: random, level: 1, size: 20, out: out/a, limit: 100}}\n",
            ["step 1 (select), line 4", "'limit' is a pool option"],
        ),
        (
            "  - select: {{strategy: random, level: 1.5, size: 20, out: out/a}}\n",
            ["step 1 (select), line 4", "level must lie in [0, 1]"],
        ),
        (
            "  - select: {{strategy: random, level: 1, size: fifty, out: out/a}}\n",
            ["step 1 (select), line 4", "'size' takes an integer", "fifty"],
        ),
        (  # a value the dataclass refuses: FeatureOptions' own message
            "  - select: {{strategy: random, level: 1, size: 20, out: out/a, lo: 900, hi: 5}}\n",
            ["step 1 (select), line 4", "lo (--lo) 900 is above hi (--hi) 5"],
        ),
        (
            "  - stats: {{component: both, json: out/s.json, tokenizer: 3}}\n",
            ["step 1 (stats), line 4", "'tokenizer' takes a path string"],
        ),
    ],
)
def test_a_bad_step_is_a_clear_error_before_any_work(
    tmp_path: Path, steps: str, wanted: list[str]
) -> None:
    msg = _bad(tmp_path, f"pool:\n  source: {POOL}\nsteps:\n" + steps.format())
    for w in wanted:
        assert w in msg, (w, msg)
    assert msg.startswith(f"recipe {tmp_path / 'recipe.yaml'}: ")


@pytest.mark.parametrize(
    "text, wanted",
    [
        ("pool: {{source: {pool}}}\nstep:\n  - report: {{dir: x}}\n",
         ["top level, line 2", "unknown key 'step'", "pool, defaults, steps"]),
        ("pool:\n  source: {pool}\n  instruction-fields: [a]\nsteps:\n  - report: {{dir: x}}\n",
         ["pool, line 3", "unknown key 'instruction_fields'", "instruction_field"]),
        ("pool: {{source: {pool}}}\ndefaults:\n  sed: 3\nsteps:\n  - report: {{dir: x}}\n",
         ["defaults, line 3", "unknown key 'sed'", "seed"]),
        ("pool: {{source: {pool}}}\ndefaults:\n  sampler: best\nsteps:\n  - report: {{dir: x}}\n",
         ["defaults, line 3", "'sampler'", "greedy"]),
        ("pool: {{source: {pool}}}\nsteps: []\n", ["steps, line 2", "non-empty list"]),
        ("pool: {{source: {pool}}}\nsteps:\n  - select: [1]\n",
         ["step 1 (select), line 3", "mapping of options"]),
        ("pool: {{source: {pool}}}\nsteps:\n  - {{select: {{}}, ladder: {{}}}}\n",
         ["step 1, line 3", "one mapping"]),
        ("pool: [unclosed\n", ["line 2", "not valid YAML"]),
    ],
)  # fmt: skip
def test_a_bad_recipe_is_a_clear_error(tmp_path: Path, text: str, wanted: list[str]) -> None:
    msg = _bad(tmp_path, text.format(pool=POOL))
    for w in wanted:
        assert w in msg, (w, msg)


def test_an_output_that_exists_and_is_not_ours_is_refused_before_any_work(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine", encoding="utf-8")
    text = (
        f"pool: {{source: {POOL}}}\nsteps:\n"
        "  - stats: {json: out/stats.json}\n"
        "  - select: {strategy: random, level: 1, size: 20, out: taken}\n"
    )
    msg = _bad(tmp_path, text)
    assert "step 2 (select), line 4" in msg and "notes.txt" in msg


def test_dash_and_underscore_spellings_are_one_option_and_defaults_apply(tmp_path: Path) -> None:
    base = {"pool": {"source": str(POOL), "first-turn-only": True}, "defaults": {"knn": 7}}
    one = parse_recipe(
        {
            **base,
            "steps": [
                {"ladder": {"size": 5, "out": "o", "no-report": True, "bleu-sample": 9, "knn": 3}}
            ],
        },
        base=tmp_path,
    )
    two = parse_recipe(
        {
            **base,
            "steps": [{"ladder": {"size": 5, "out": "o", "no_report": True, "bleu_sample": 9}}],
        },
        base=tmp_path,
    )
    a, b = one.steps[0].args, two.steps[0].args
    assert a.no_report is b.no_report is True and a.bleu_sample == b.bleu_sample == 9
    assert a.first_turn_only is b.first_turn_only is True
    assert a.knn == 3 and b.knn == 7  # a step's own option wins over the defaults
    assert a.out == str(tmp_path / "o") and a.source == str(POOL)
    assert a.levels == "7" and a.seed == 0  # the command's own defaults
    # `stats --component` is stats' own option: a FeatureOptions default does not reach it
    three = parse_recipe(
        {**base, "defaults": {"component": "instruction"}, "steps": [{"stats": {}}]},
        base=tmp_path,
    )
    assert three.steps[0].args.component == "response"


def test_a_json_recipe_is_accepted_with_its_lines(tmp_path: Path) -> None:
    good = {
        "pool": {"source": str(POOL)},
        "steps": [{"select": {"strategy": "random", "level": 0, "size": 4, "out": "sel"}}],
    }
    recipe = load_recipe(_write(tmp_path, json.dumps(good, indent=2), "recipe.json"))
    assert recipe.steps[0].args.out == str(tmp_path / "sel") and recipe.steps[0].line == 6
    bad = {**good, "steps": [{"select": {**good["steps"][0]["select"], "colour": 1}}]}
    path = _write(tmp_path, json.dumps(bad, indent=2), "bad.json")
    with pytest.raises(ValueError, match=r"step 1 \(select\), line 12: unknown key 'colour'"):
        load_recipe(path)


def test_the_plan_names_the_pool_defaults_and_every_step(tmp_path: Path) -> None:
    recipe = load_recipe(_write(tmp_path, RECIPE.format(pool=POOL)))
    plan = recipe.plan().splitlines()
    assert plan[0] == f"recipe {tmp_path / 'recipe.yaml'}: 5 steps"
    assert plan[1] == f"pool: {POOL} (format=auto), loaded once"
    assert plan[2] == "defaults: seed=5 metrics=False lo=3 hi=0.5x progress=False"
    assert plan[4] == (
        f"step 2/5 select strategy=response-micro level=1.0 size=50 out={tmp_path}/out/micro-1"
    )
    assert [p.split(" ")[2] for p in plan[3:]] == list(STEP_KINDS)
    assert not (tmp_path / "out").exists()


def test_path_options_are_options_of_the_commands() -> None:
    from tritondiv.recipe import _PATH_OPTIONS

    every = set().union(*(command_options(k) for k in STEP_KINDS))
    assert _PATH_OPTIONS <= every
    assert {"strategy", "level", "size", "out", "levels", "strategies", "datasets", "dir"} <= every


def test_the_shipped_example_recipe_checks(tmp_path: Path) -> None:
    recipe = load_recipe(REPO / "examples" / "recipe.yaml")
    assert [s.kind for s in recipe.steps] == list(STEP_KINDS)
    assert recipe.pool.source == os.path.normpath(REPO / "examples" / "data")
