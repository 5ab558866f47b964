"""``tritondiv run RECIPE.yaml``: a pipeline of stats/select/ladder/metrics/report steps.

The recipe (YAML, or JSON) names the pool once (``pool:``, the POOL argument and its loader
options), optional ``defaults:`` (feature options, seed, metrics) and the ``steps:``, each
``{COMMAND: {options}}`` with that command's own option names (``--no-report`` is
``no_report: true``, ``--no-metrics`` is ``metrics: false``). Relative paths resolve against
the recipe's folder. The whole recipe is checked before any work; the pool is loaded once
and shared by the steps. See :mod:`tritondiv.recipe`.
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "run",
        help="run a recipe: a pipeline of stats/select/ladder/metrics/report steps",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("recipe", metavar="RECIPE", help="recipe file (.yaml/.yml, or .json)")
    p.add_argument(
        "--dry-run", action="store_true", help="check the recipe and print the plan; run nothing"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tritondiv.recipe import load_recipe, run_recipe

    recipe = load_recipe(args.recipe)
    if args.dry_run:
        print(recipe.plan())
        return 0
    run_recipe(recipe)  # logs the pool's loading and "step 2/4 ladder ..." on stderr
    return 0
