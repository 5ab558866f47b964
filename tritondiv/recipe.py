"""Recipes: a pipeline of ``stats``/``select``/``ladder``/``metrics``/``report`` steps in one
file, run by ``tritondiv run RECIPE.yaml``.

A recipe (YAML, or JSON) has three keys::

    pool:                      # POOL and its loader options (PoolArgs)
      source: data/            # relative paths resolve against the recipe's folder
      instruction_field: question
    defaults:                  # FeatureOptions fields and RunArgs (seed, metrics, bleu_sample),
      seed: 3                  # applied to every step whose command takes them
      metrics: false
    steps:
      - stats: {component: both, json: out/stats.json}
      - select: {strategy: response-micro, level: 1, size: 50, out: out/micro-1}
      - ladder: {strategies: response-micro, levels: 3, size: 50, out: out/ladder}
      - metrics: {datasets: [out/micro-1], no_embeddings: true}
      - report: {dir: out/ladder}

One definition of options: a step's keys are exactly the options of its command, read off
the command's own parser (:func:`command_options`, the ``dest`` of each argument, which is
the field name of the dataclass it is built from: ``tokenizer``, ``no_report``,
``metrics``); a dash spelling (``no-report``) is accepted. The values then go through the
same dataclasses (:class:`~tritondiv.commands._options.PoolArgs`,
:class:`~tritondiv.feature_store.FeatureOptions`, ``RunArgs``, ``EngineArgs``) as the
command line's.

The whole recipe is checked before any work (:func:`parse_recipe`): unknown keys (with the
step number and the YAML line), unknown strategies, missing required options, two steps
writing one output, a ``metrics``/``report`` step reading an output that no earlier step
writes and that does not exist, an output folder that cannot be written. Then
:func:`run_recipe` loads the pool once and runs each step through its command's ``run``
(the pool passed in), logging ``step 2/4 ladder ...``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

__all__ = [
    "POOL_STEPS",
    "STEP_KINDS",
    "Recipe",
    "RecipeStep",
    "command_options",
    "load_recipe",
    "parse_recipe",
    "run_recipe",
]

#: The commands a recipe step may run, in the order a pipeline usually has them.
STEP_KINDS: tuple[str, ...] = ("stats", "select", "ladder", "metrics", "report")
#: The steps that work on the recipe's pool (loaded once, shared).
POOL_STEPS: tuple[str, ...] = ("stats", "select", "ladder")
_TOP_KEYS = ("pool", "defaults", "steps")

# Options whose values are file system paths: a relative one resolves against the recipe's
# folder. (Names of the commands' options; tests/test_recipe.py checks each is one.)
_PATH_OPTIONS = frozenset(
    {
        "source",
        "out",
        "json",
        "dir",
        "datasets",
        "embeddings_instruction",
        "embeddings_response",
        "embedding_model",
        "graph",
        "tokenizer",
    }
)


# ----------------------------------------------------------------------------- the options
def _command_parser(kind: str) -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="tritondiv")
    sub = root.add_subparsers(dest="command")
    importlib.import_module(f"tritondiv.commands.{kind}").register(sub)
    parser = sub.choices[kind]
    assert isinstance(parser, argparse.ArgumentParser)
    return parser


_PARSERS: dict[str, argparse.ArgumentParser] = {}


def _parser(kind: str) -> argparse.ArgumentParser:
    if kind not in _PARSERS:
        _PARSERS[kind] = _command_parser(kind)
    return _PARSERS[kind]


def command_options(kind: str) -> dict[str, argparse.Action]:
    """The options of the command ``kind`` as its parser defines them: ``{dest: action}``.

    These names are the keys a recipe step of that kind takes (the pool's options go in
    the recipe's ``pool:``).
    """
    if kind not in STEP_KINDS:
        raise ValueError(f"unknown step {kind!r}: a step is one of {', '.join(STEP_KINDS)}")
    return {
        a.dest: a
        for a in _parser(kind)._actions
        if not isinstance(a, argparse._HelpAction) and a.dest != argparse.SUPPRESS
    }


def _pool_names() -> list[str]:
    from tritondiv.commands._options import PoolArgs

    return [f.name for f in fields(PoolArgs)]


def _default_names() -> list[str]:
    from tritondiv.commands._options import RunArgs
    from tritondiv.feature_store import FeatureOptions

    return [f.name for f in fields(FeatureOptions)] + [f.name for f in fields(RunArgs)]


def _owned(cls: type, actions: dict[str, argparse.Action]) -> list[str]:
    """The fields of the dataclass ``cls`` that are options of a command (``actions``): an
    option of the same name and help (``stats --component`` is its own, not
    FeatureOptions')."""
    out = []
    for f in fields(cls):  # type: ignore[arg-type]
        action = actions.get(f.name)
        help_text = str(f.metadata.get("help", ""))
        if action is not None and str(action.help or "").startswith(help_text):
            out.append(f.name)
    return out


def _key(name: Any) -> str:
    return str(name).replace("-", "_")


# ----------------------------------------------------------------------------- YAML lines
class _Lines:
    """Line numbers (1-based) of a composed YAML document, looked up by key path."""

    def __init__(self, node: Any) -> None:
        self.node = node

    def _child(self, node: Any, key: Any) -> tuple[Any, Any]:
        import yaml  # type: ignore[import-untyped]

        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if isinstance(k, yaml.ScalarNode) and _key(k.value) == _key(key):
                    return k, v
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int):
            if 0 <= key < len(node.value):
                item = node.value[key]
                return item, item
        return None, None

    def line(self, *path: Any) -> int | None:
        """Line of the last key (or item) of ``path``, else of the deepest one found."""
        node, best = self.node, None
        for key in path:
            if node is None:
                break
            key_node, node = self._child(node, key)
            if key_node is None:
                break
            best = key_node.start_mark.line + 1
        return best


def _read_text(path: Path) -> tuple[Any, _Lines]:
    import yaml  # type: ignore[import-untyped]

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"recipe {path} does not exist") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"recipe {path} is not UTF-8 text ({exc.reason})") from None
    node: Any = None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"recipe {path}, line {exc.lineno}: not valid JSON: {exc.msg}"
            ) from None
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError:
            node = None  # JSON that YAML 1.1 does not read: no line numbers
        return data, _Lines(node)
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark is not None else ""
        raise ValueError(f"recipe {path}{where}: not valid YAML: {exc}") from None
    finally:
        loader.dispose()
    return data, _Lines(node)


# ----------------------------------------------------------------------------- the model
@dataclass
class RecipeStep:
    """One step: its number (1-based), command, line in the recipe and the parsed options
    (an :class:`argparse.Namespace` as the command's parser would give, pool options in)."""

    number: int
    kind: str
    args: argparse.Namespace
    given: dict[str, Any]
    line: int | None = None
    writes: list[Path] = field(default_factory=list)
    reads: list[Path] = field(default_factory=list)

    def where(self) -> str:
        at = f", line {self.line}" if self.line is not None else ""
        return f"step {self.number} ({self.kind}{at})"

    def describe(self) -> str:
        """The options given to this step, one line: ``strategy=response-micro size=50 ...``."""
        return " ".join(f"{k}={_show(v)}" for k, v in self.given.items())


def _show(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


@dataclass
class Recipe:
    """A checked recipe: the pool's options, and the steps in order."""

    path: Path | None
    pool: Any  # PoolArgs
    steps: list[RecipeStep]
    defaults: dict[str, Any] = field(default_factory=dict)

    @property
    def needs_pool(self) -> bool:
        return any(s.kind in POOL_STEPS for s in self.steps)

    def plan(self) -> str:
        """The plan, as ``--dry-run`` prints it."""
        from dataclasses import asdict

        pool = {k: v for k, v in asdict(self.pool).items() if v not in (None, False)}
        lines = [f"recipe {self.path or '<dict>'}: {len(self.steps)} steps"]
        if self.needs_pool:
            shown = " ".join(f"{k}={_show(v)}" for k, v in pool.items() if k != "source")
            source = self.pool.source or "the embedded default pool"
            lines.append(f"pool: {source}" + (f" ({shown})" if shown else "") + ", loaded once")
        if self.defaults:
            shown = " ".join(f"{k}={_show(v)}" for k, v in self.defaults.items())
            lines.append(f"defaults: {shown}")
        n = len(self.steps)
        for s in self.steps:
            lines.append(f"step {s.number}/{n} {s.kind} {s.describe()}".rstrip())
        return "\n".join(lines)


class _Where:
    """Builds the error messages of one recipe: file, step, key, line."""

    def __init__(self, path: Path | None, lines: _Lines | None) -> None:
        self.path, self.lines = path, lines

    def line(self, *keys: Any) -> int | None:
        return self.lines.line(*keys) if self.lines is not None else None

    def error(self, what: str, message: str, *keys: Any) -> ValueError:
        line = self.line(*keys) if keys else None
        at = f", line {line}" if line is not None else ""
        name = f"recipe {self.path}" if self.path is not None else "recipe"
        return ValueError(f"{name}: {what}{at}: {message}")


def _check_value(action: argparse.Action, value: Any) -> Any:
    """``value`` for the option ``action`` as YAML gave it, checked the way argparse would
    (the dataclass behind the option then normalizes and validates it)."""
    name = action.dest
    if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
        if not isinstance(value, bool):
            raise ValueError(f"option {name!r} takes true or false, got {value!r}")
        # the value of the field, not of the flag: `metrics: false` is --no-metrics
        return value
    if isinstance(action, argparse._StoreConstAction):  # progress: true / false / null
        if value is not None and not isinstance(value, bool):
            raise ValueError(f"option {name!r} takes true, false or null, got {value!r}")
        return value
    if isinstance(action, argparse._AppendAction) or action.nargs in ("+", "*"):
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
            raise ValueError(f"option {name!r} takes a string or a list of strings, got {value!r}")
        if action.nargs == "+" and not items:
            raise ValueError(f"option {name!r} needs at least one value")
        return items
    if action.type is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"option {name!r} takes an integer, got {value!r}")
    elif action.type is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"option {name!r} takes a number, got {value!r}")
        value = float(value)
    elif name in _PATH_OPTIONS and value is not None and not isinstance(value, str):
        raise ValueError(f"option {name!r} takes a path string, got {value!r}")
    elif value is not None and not isinstance(value, (str, int, float, list)):
        raise ValueError(f"option {name!r} takes a string, number or list, got {value!r}")
    if action.choices is not None and value not in action.choices:
        what = "strategy" if name == "strategy" else f"value of {name!r}"
        raise ValueError(
            f"unknown {what} {value!r}: choose from {', '.join(map(str, action.choices))}"
        )
    return value


def _resolve(name: str, value: Any, base: Path) -> Any:
    """A relative path of option ``name`` resolved against the recipe's folder ``base``."""
    from tritondiv.tokens import TOKENIZER_NAMES

    if name == "tagger" and isinstance(value, str) and value.startswith("llm:"):
        return "llm:" + str(_resolve("graph", value[4:], base))
    if name not in _PATH_OPTIONS or value is None:
        return value
    if isinstance(value, list):
        return [_resolve(name, v, base) for v in value]
    if name == "tokenizer" and value in TOKENIZER_NAMES:
        return value
    p = Path(value).expanduser()
    return os.path.normpath(p if p.is_absolute() else (base / p).absolute())


def _mapping(value: Any, where: _Where, what: str, *keys: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise where.error(what, f"expected a mapping of options, got {value!r}", *keys)
    return {str(k): v for k, v in value.items()}


def _known(names: list[str]) -> str:
    return ", ".join(sorted(names))


def _within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def parse_recipe(
    data: Any,
    *,
    base: str | Path | None = None,
    path: str | Path | None = None,
    lines: Any = None,
) -> Recipe:
    """Check a recipe (the mapping read from its file) and return it; nothing is written.

    Parameters
    ----------
    data : mapping
        ``{pool: {...}, defaults: {...}, steps: [{KIND: {...}}, ...]}``.
    base : path, optional
        Folder relative paths resolve against (default: the folder of ``path``, else the
        current folder).
    path : path, optional
        The recipe file, for the messages.
    lines : optional
        Line numbers of the composed YAML (internal; :func:`load_recipe` passes them).

    Raises
    ------
    ValueError
        A key, value or step is not valid; the message names the step, the key and the
        line, and what exists.
    """
    from tritondiv.commands._options import EngineArgs, PoolArgs, RunArgs, from_args
    from tritondiv.feature_store import FeatureOptions

    rpath = Path(path) if path is not None else None
    root = Path(base) if base is not None else (rpath.parent if rpath is not None else Path.cwd())
    root = root.absolute()
    where = _Where(rpath, lines)
    if not isinstance(data, Mapping):
        raise where.error("top level", f"expected a mapping with {', '.join(_TOP_KEYS)}")
    top = {_key(k): v for k, v in data.items()}
    for k in top:
        if k not in _TOP_KEYS:
            raise where.error(
                "top level", f"unknown key {k!r}: a recipe has {', '.join(_TOP_KEYS)}", k
            )

    # pool: the loader options, as the commands' POOL and its options
    select_actions = command_options("select")
    pool_given = {_key(k): v for k, v in _mapping(top.get("pool"), where, "pool", "pool").items()}
    pool_names = _pool_names()
    pool_values: dict[str, Any] = {}
    for k, v in pool_given.items():
        if k not in pool_names:
            raise where.error(
                "pool", f"unknown key {k!r}: the pool takes {_known(pool_names)}", "pool", k
            )
        try:
            pool_values[k] = _resolve(k, _check_value(select_actions[k], v), root)
        except ValueError as exc:
            raise where.error("pool", str(exc), "pool", k) from None
    try:
        pool_args = PoolArgs(**pool_values)
    except (TypeError, ValueError) as exc:
        raise where.error("pool", str(exc), "pool") from None

    # defaults: FeatureOptions and RunArgs fields
    defaults_given = {
        _key(k): v for k, v in _mapping(top.get("defaults"), where, "defaults", "defaults").items()
    }
    default_names = _default_names()
    defaults: dict[str, Any] = {}
    for k, v in defaults_given.items():
        if k not in default_names:
            raise where.error(
                "defaults",
                f"unknown key {k!r}: defaults take the feature and run options "
                f"{_known(default_names)}",
                "defaults",
                k,
            )
        try:
            defaults[k] = _resolve(k, _check_value(select_actions[k], v), root)
        except ValueError as exc:
            raise where.error("defaults", str(exc), "defaults", k) from None
    try:
        FeatureOptions(**{k: v for k, v in defaults.items() if k in _fields(FeatureOptions)})
        RunArgs(**{k: v for k, v in defaults.items() if k in _fields(RunArgs)})
    except (TypeError, ValueError) as exc:
        raise where.error("defaults", str(exc), "defaults") from None

    steps_given = top.get("steps")
    if not isinstance(steps_given, list) or not steps_given:
        raise where.error("steps", "expected a non-empty list of steps", "steps")
    steps: list[RecipeStep] = []
    for i, item in enumerate(steps_given):
        number = i + 1
        line = where.line("steps", i)
        if not isinstance(item, Mapping) or len(item) != 1:
            raise where.error(
                f"step {number}",
                f"a step is one mapping {{KIND: {{options}}}} with KIND one of "
                f"{', '.join(STEP_KINDS)}, got {item!r}",
                "steps",
                i,
            )
        ((kind_given, opts),) = item.items()
        kind = str(kind_given)
        if kind not in STEP_KINDS:
            raise where.error(
                f"step {number}",
                f"unknown step {kind!r}: a step is one of {', '.join(STEP_KINDS)}",
                "steps",
                i,
            )
        step_where = f"step {number} ({kind})"
        given = {_key(k): v for k, v in _mapping(opts, where, step_where, "steps", i).items()}
        actions = command_options(kind)
        ns = argparse.Namespace(**{d: a.default for d, a in actions.items()})
        for d, v in _parser(kind)._defaults.items():
            setattr(ns, d, v)
        ns.command = kind
        pool_owned = _owned(PoolArgs, actions)
        takes = [d for d in actions if d not in pool_owned]
        for k, v in given.items():
            keys = ("steps", i, kind_given, k)
            if k in pool_owned:
                raise where.error(step_where, f"{k!r} is a pool option: put it under pool:", *keys)
            if k not in actions:
                raise where.error(
                    step_where, f"unknown key {k!r}: {kind} takes {_known(takes)}", *keys
                )
            try:
                given[k] = _resolve(k, _check_value(actions[k], v), root)
            except ValueError as exc:
                raise where.error(step_where, str(exc), *keys) from None
        for k, v in pool_values.items():
            if k in pool_owned:
                setattr(ns, k, v)
        from_defaults = set(_owned(FeatureOptions, actions)) | set(_owned(RunArgs, actions))
        for k, v in defaults.items():
            if k in from_defaults and k not in given:
                setattr(ns, k, v)
        for k, v in given.items():
            setattr(ns, k, v)
        missing = [
            d for d, a in actions.items() if a.required and d not in given and d not in pool_owned
        ]
        if missing:
            raise where.error(
                step_where,
                f"missing required option {', '.join(repr(m) for m in missing)}",
                "steps",
                i,
            )
        step = RecipeStep(number, kind, ns, given, line)
        # the dataclasses of the command line, with their validation
        try:
            for cls in (PoolArgs, FeatureOptions, RunArgs, EngineArgs):
                only = _owned(cls, actions)
                if only:
                    from_args(cls, ns, only=only)
            _check_step(step)
        except (TypeError, ValueError) as exc:
            raise where.error(step_where, str(exc), "steps", i) from None
        steps.append(step)
    _check_outputs(steps, where)
    return Recipe(rpath, pool_args, steps, defaults)


def _fields(cls: type) -> set[str]:
    return {f.name for f in fields(cls)}  # type: ignore[arg-type]


def _check_step(step: RecipeStep) -> None:
    """The checks the command does before its work (output folder, extras, levels...)."""
    from tritondiv._extras import check_extras
    from tritondiv.commands._needs import check_run
    from tritondiv.commands._options import EngineArgs, RunArgs, from_args
    from tritondiv.dataset import check_output_dir
    from tritondiv.feature_store import FeatureOptions
    from tritondiv.strategies import parse_levels, parse_strategies

    a = step.args
    if step.kind in ("select", "ladder"):
        if a.size < 1:
            raise ValueError(f"size must be >= 1, got {a.size}")
        if step.kind == "select":
            if not 0.0 <= a.level <= 1.0:
                raise ValueError(f"level must lie in [0, 1], got {a.level}")
            strategies = [a.strategy]
        else:
            parse_levels(a.levels)
            strategies = parse_strategies(a.strategies)
        check_output_dir(a.out, ladder=step.kind == "ladder")
        step.writes.append(Path(a.out))
        run_args = from_args(RunArgs, a)
        check_run(
            f"step {step.number} ({step.kind})",
            strategies,
            from_args(FeatureOptions, a),
            metrics=run_args.metrics,
            report=step.kind == "ladder" and not a.no_report,
            default_pool=a.source is None,
        )
        from_args(EngineArgs, a).check(strategies)
    elif step.kind == "metrics":
        step.reads.extend(Path(d) for d in a.datasets)
        if not a.no_embeddings:
            check_extras("embed", what="the mean pairwise embedding distance")
    elif step.kind == "report":
        step.reads.append(Path(a.dir))
        check_extras("report", what="tritondiv report")
    if getattr(a, "json", None):
        step.writes.append(Path(a.json))


def _check_outputs(steps: list[RecipeStep], where: _Where) -> None:
    """No two steps write one output; every read is there or written by an earlier step."""
    written: dict[Path, RecipeStep] = {}
    for step in steps:
        for r in step.reads:
            earlier = [
                w
                for w, s in written.items()
                if _within(r, w) or (step.kind == "report" and _within(w, r))
            ]
            if not earlier and not r.exists():
                raise where.error(
                    f"step {step.number} ({step.kind})",
                    f"reads {r}, which no earlier step writes and which does not exist",
                    "steps",
                    step.number - 1,
                )
        for w in step.writes:
            if w in written:
                other = written[w]
                raise where.error(
                    f"step {step.number} ({step.kind})",
                    f"writes {w}, which step {other.number} ({other.kind}) writes too: give each "
                    "step its own out",
                    "steps",
                    step.number - 1,
                )
            written[w] = step


def load_recipe(path: str | Path) -> Recipe:
    """Read and check the recipe file ``path`` (YAML, or JSON by its ``.json`` suffix)."""
    p = Path(path)
    data, lines = _read_text(p)
    return parse_recipe(data, path=p, base=p.absolute().parent, lines=lines)


# ----------------------------------------------------------------------------- running
def run_recipe(recipe: Recipe, *, log: Callable[[str], None] | None = None) -> None:
    """Run a checked recipe: the pool loaded once, then each step through its command.

    Each step calls the ``run`` of its command module (``tritondiv.commands.<kind>``),
    given the shared pool, so a step does what the command does.

    Raises
    ------
    ValueError
        A step's ``size`` exceeds the pool (checked once the pool is loaded, before the
        first step), or a step fails as its command would.
    """
    say = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    pool: Any = None
    pool_info: dict[str, Any] | None = None
    if recipe.needs_pool:
        say(f"pool: loading {recipe.pool.source or 'the embedded default pool'}")
        pool = recipe.pool.load()
        pool_info = recipe.pool.info(pool)
        for step in recipe.steps:
            if step.kind in ("select", "ladder") and step.args.size > len(pool):
                raise ValueError(
                    f"{step.where()}: size {step.args.size} is larger than the pool "
                    f"({len(pool)} samples): pass a smaller size"
                )
    n = len(recipe.steps)
    for step in recipe.steps:
        say(f"step {step.number}/{n} {step.kind} {step.describe()}".rstrip())
        module = importlib.import_module(f"tritondiv.commands.{step.kind}")
        if step.kind in ("select", "ladder"):
            rc = module.run(step.args, pool=pool, pool_info=pool_info)
        elif step.kind == "stats":
            rc = module.run(step.args, pool=pool)
        else:
            rc = module.run(step.args)
        if rc:
            raise RuntimeError(f"{step.where()} returned {rc}")
