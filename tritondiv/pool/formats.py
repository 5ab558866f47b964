"""Record formats and the one record rule: :func:`record_texts` turns one record into its
``(instruction, response)``.

``alpaca``
    ``instruction``, optional ``input``, and ``output`` (or ``response`` when the record —
    for a whole file: its first record — has no ``output``). instruction =
    ``instruction + "\\n" + input`` when ``input`` is a non-empty string, else
    ``instruction``; ``input`` may be absent or null.
``prompt_completion``
    ``prompt`` -> instruction, ``completion`` -> response.
``question_answer``
    ``question`` -> instruction, ``answer`` -> response.
``sharegpt``
    ``conversations: [{"from": ..., "value": ...}, ...]``.
``messages``
    OpenAI chat format ``messages: [{"role": ..., "content": ...}, ...]``; ``content`` may
    also be a list of parts, whose ``{"type": "text", "text": ...}`` parts (and plain
    strings) are concatenated.

Conversations (``sharegpt`` and ``messages``):

* user roles are ``human`` and ``user``; assistant roles are ``gpt``, ``assistant``,
  ``chatgpt``, ``bing``, ``bard``, ``model`` and ``bot`` (case-insensitive);
* ``system``, ``developer``, ``tool``, ``function``, ``ipython`` and ``observation`` turns
  are not part of either text; any other role is an error;
* the conversation starts at its first user turn: assistant turns before it are not part
  of the response;
* turns whose text is empty or whitespace only are left out;
* instruction = the user turns joined with a blank line (``"\\n\\n"``), response = the
  assistant turns after the first user turn, joined likewise;
* with ``first_turn_only=True``: instruction = the first user turn, response = the first
  assistant turn after it;
* a conversation needs a non-empty user turn and a non-empty assistant turn after it.

Texts are kept exactly as read (not stripped). A missing, null, non-string or (after
stripping whitespace, unless ``allow_empty``) empty instruction or response is a bad record.

The readers' columnar fast paths (pyarrow compute over parquet and big ``.jsonl`` files, in
:mod:`tritondiv.pool.extract`) give exactly what this rule gives record by record; the tests
hold them to it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tritondiv.pool.model import MISSING, PoolError

__all__ = [
    "CONVERSATION_FORMATS",
    "FORMATS",
    "FieldMap",
    "Problem",
    "alpaca_response_field",
    "detect_format",
    "format_fields",
    "json_type",
    "record_texts",
    "texts_of",
    "unknown_format",
]

#: Accepted values of ``format=``: ``auto`` detects the format per file from its first
#: record, ``mixed`` per record (for files that mix formats, e.g. a dataset's
#: ``data.jsonl``); the others force one format on every record.
FORMATS: tuple[str, ...] = (
    "auto",
    "mixed",
    "alpaca",
    "prompt_completion",
    "question_answer",
    "sharegpt",
    "messages",
)
#: The formats whose records are conversations (a list of turns).
CONVERSATION_FORMATS: tuple[str, ...] = ("sharegpt", "messages")

_USER_ROLES = frozenset({"human", "user"})
_ASSISTANT_ROLES = frozenset({"gpt", "assistant", "chatgpt", "bing", "bard", "model", "bot"})
_IGNORED_ROLES = frozenset({"system", "developer", "tool", "function", "ipython", "observation"})
_SIMPLE_FIELDS = {
    "prompt_completion": ("prompt", "completion"),
    "question_answer": ("question", "answer"),
}
_CONVERSATION_KEYS = {
    "sharegpt": ("conversations", "from", "value"),
    "messages": ("messages", "role", "content"),
}
_UNKNOWN_FORMAT_HINT = (
    "Expected alpaca (instruction, input, output|response), prompt/completion, "
    "question/answer, ShareGPT (conversations) or OpenAI messages (messages); "
    "rename the fields or pass format="
)


def detect_format(fields: Iterable[str]) -> str | None:
    """Return the record format a record with these fields has, or ``None``."""
    f = set(fields)
    if "conversations" in f:
        return "sharegpt"
    if "messages" in f:
        return "messages"
    if "instruction" in f and ("output" in f or "response" in f):
        return "alpaca"
    if "prompt" in f and "completion" in f:
        return "prompt_completion"
    if "question" in f and "answer" in f:
        return "question_answer"
    return None


def unknown_format(fields: Iterable[str]) -> tuple[str, str]:
    """(reason, hint) for a record whose fields match no format."""
    names = ", ".join(map(repr, fields)) or "none"
    return f"has an unknown record format (fields: {names})", _UNKNOWN_FORMAT_HINT


def alpaca_response_field(fields: Iterable[str]) -> str:
    """``output``, or ``response`` when the fields have ``response`` and no ``output``."""
    f = set(fields)
    return "output" if "output" in f or "response" not in f else "response"


def format_fields(fmt: str, response_field: str = "output") -> tuple[str, str]:
    """The fields that hold the instruction and the response of a format (for messages)."""
    if fmt == "alpaca":
        return "instruction", response_field
    if fmt in _CONVERSATION_KEYS:
        key = _CONVERSATION_KEYS[fmt][0]
        return key, key
    return _SIMPLE_FIELDS[fmt]


def json_type(value: Any) -> str:
    """The JSON name of a parsed value's type (``object``, ``list``, ``number``, ...)."""
    if value is None:
        return "null"
    return {
        dict: "object",
        list: "list",
        str: "string",
        bool: "boolean",
        int: "number",
        float: "number",
    }.get(type(value), type(value).__name__)


class Problem(Exception):
    """A bad record: the field (``None`` for the record itself) and the reason."""

    def __init__(self, field: str | None, reason: str) -> None:
        super().__init__(field, reason)
        self.field, self.reason = field, reason


def value_problem(v: Any) -> str | None:
    """Why ``v`` is not a non-empty text field, or ``None`` when it is one."""
    if v is MISSING:
        return "is missing"
    if type(v) is not str:
        return f"is a JSON {json_type(v)}, expected a string"
    if not v or v.isspace():
        return "is empty"
    return None


def _text(record: Mapping[str, Any], field: str, allow_empty: bool) -> str:
    v = record.get(field, MISSING)
    if type(v) is str and (allow_empty or (v and not v.isspace())):
        return v
    raise Problem(field, value_problem(v) or "is empty")


def _part_text(content: Any) -> Any:
    """OpenAI content: a string, or a list of parts whose text parts are concatenated."""
    if isinstance(content, list):
        out = []
        for part in content:
            if (
                isinstance(part, dict)
                and part.get("type") == "text"
                and isinstance(part.get("text"), str)
            ):
                out.append(part["text"])
            elif isinstance(part, str):
                out.append(part)
        return "".join(out)
    return content


def _conversation(
    turns: Any, key: str, role_key: str, text_key: str, first_only: bool
) -> tuple[str, str]:
    if turns is MISSING:
        raise Problem(key, "is missing")
    if not isinstance(turns, list):
        raise Problem(key, f"is a JSON {json_type(turns)}, expected a list of turns")
    users: list[str] = []
    assistants: list[str] = []
    for j, turn in enumerate(turns):
        if not isinstance(turn, dict):
            raise Problem(f"{key}[{j}]", f"is a JSON {json_type(turn)}, expected an object")
        role = turn.get(role_key, MISSING)
        if type(role) is not str:
            raise Problem(f"{key}[{j}].{role_key}", value_problem(role) or "is not a string")
        text = turn.get(text_key, MISSING)
        if text_key == "content":
            text = _part_text(text)
        if type(text) is not str:
            raise Problem(f"{key}[{j}].{text_key}", value_problem(text) or "is not a string")
        r = role.lower()
        if r in _USER_ROLES:
            if text and not text.isspace():
                if first_only and users:
                    if assistants:
                        break
                    continue
                users.append(text)
        elif r in _ASSISTANT_ROLES:
            if users and text and not text.isspace():
                assistants.append(text)
                if first_only:
                    break
        elif r not in _IGNORED_ROLES:
            raise Problem(
                f"{key}[{j}].{role_key}",
                f"has the unknown role {role!r} (user: human/user; assistant: "
                "gpt/assistant/chatgpt/bing/bard/model/bot; ignored: system/tool/...)",
            )
    if not users:
        raise Problem(key, "has no non-empty user turn")
    if not assistants:
        raise Problem(key, "has no non-empty assistant turn after the first user turn")
    return "\n\n".join(users), "\n\n".join(assistants)


def texts_of(
    record: Mapping[str, Any],
    fmt: str,
    first_only: bool = False,
    allow_empty: bool = False,
    response_field: str | None = None,
) -> tuple[str, str]:
    """The record rule for a known format; raises :class:`Problem`.

    ``response_field`` fixes alpaca's response field (a file's readers take it from the
    file's first record); ``None`` takes it from this record.
    """
    if fmt in _CONVERSATION_KEYS:
        key, role_key, text_key = _CONVERSATION_KEYS[fmt]
        return _conversation(record.get(key, MISSING), key, role_key, text_key, first_only)
    if fmt == "alpaca":
        instruction = _text(record, "instruction", allow_empty)
        extra = record.get("input", MISSING)
        if extra is not MISSING and extra is not None and type(extra) is not str:
            raise Problem("input", f"is a JSON {json_type(extra)}, expected a string or null")
        response = _text(record, response_field or alpaca_response_field(record), allow_empty)
        if type(extra) is str and extra:
            instruction = instruction + "\n" + extra
        return instruction, response
    inst_field, resp_field = _SIMPLE_FIELDS[fmt]
    return _text(record, inst_field, allow_empty), _text(record, resp_field, allow_empty)


_MAPPING_HINT = (
    "Name existing fields with instruction=/response=/id= "
    "(--instruction-field/--response-field/--id-field)"
)


@dataclass(frozen=True)
class FieldMap:
    """The field mapping of ``load_pool(instruction=, response=, id=)``.

    The mapped record rule: instruction = the first instruction field (a non-empty string,
    as alpaca's ``instruction``) joined with ``"\n"`` to each later one that is a
    non-empty string (a later field may be null or empty: it is then skipped, as alpaca's
    ``input``); response = the response field (a non-empty string). Unset, the instruction
    is alpaca's (``instruction`` then the optional ``input``) and the response alpaca's
    (``output``, or ``response`` when the first record has no ``output``). ``id`` names the
    field sample ids are taken from (default ``id``).
    """

    instruction: tuple[str, ...] | None = None
    response: str | None = None
    id: str | None = None

    @property
    def maps_texts(self) -> bool:
        return self.instruction is not None or self.response is not None

    def resolve(self, fields: Iterable[str], path: str | None) -> tuple[tuple[str, ...], str]:
        """(instruction fields, response field) for a block whose first record (or table)
        has ``fields``; a named field that is absent is a :class:`PoolError` listing the
        fields there are."""
        have = list(fields)
        instruction = self.instruction or ("instruction", "input")
        response = self.response or alpaca_response_field(have)
        named = [*(self.instruction or ("instruction",)), response]
        if self.id is not None:
            named.append(self.id)
        absent = [f for f in dict.fromkeys(named) if f not in have]
        if absent:
            which = ", ".join(map(repr, absent))
            raise PoolError(
                f"has no field {which} (fields: {', '.join(map(repr, have)) or 'none'})",
                path=path,
                hint=_MAPPING_HINT,
            )
        return instruction, response


def mapped_texts(
    record: Mapping[str, Any],
    instruction: tuple[str, ...],
    response: str,
    allow_empty: bool = False,
) -> tuple[str, str]:
    """The mapped record rule (:class:`FieldMap`); raises :class:`Problem`."""
    text = _text(record, instruction[0], allow_empty)
    for name in instruction[1:]:
        extra = record.get(name, MISSING)
        if extra is MISSING or extra is None:
            continue
        if type(extra) is not str:
            raise Problem(name, f"is a JSON {json_type(extra)}, expected a string or null")
        if extra:
            text = text + "\n" + extra
    return text, _text(record, response, allow_empty)


def record_texts(
    record: Mapping[str, Any],
    fmt: str = "auto",
    *,
    first_turn_only: bool = False,
    allow_empty: bool = False,
) -> tuple[str, str]:
    """Return ``(instruction, response)`` of one record: the one record rule (see the module
    docstring), the same that :func:`tritondiv.pool.load_pool` applies to every record.

    Parameters
    ----------
    record : Mapping
        One record (a parsed JSON object).
    fmt : str
        ``"auto"`` (or ``"mixed"``): detect the format of this record from its fields; or
        one of ``"alpaca"``, ``"prompt_completion"``, ``"question_answer"``,
        ``"sharegpt"``, ``"messages"``.
    first_turn_only : bool
        Conversations: only the first user turn and the first assistant reply after it.
    allow_empty : bool
        Accept empty (or whitespace-only) texts of the single-turn formats.

    Raises
    ------
    TypeError
        When ``record`` is not a mapping.
    ValueError
        When ``fmt`` is not one of :data:`FORMATS`.
    PoolError
        A bad record (unknown format, a missing, null, non-string or empty field, a bad
        conversation); ``field`` and ``reason`` name the field and the problem.
    """
    if not isinstance(record, Mapping):
        raise TypeError(f"record must be a mapping (a JSON object), got {type(record).__name__}")
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {', '.join(FORMATS)}; got {fmt!r}")
    if fmt in ("auto", "mixed"):
        detected = detect_format(record)
        if detected is None:
            reason, hint = unknown_format(record)
            raise PoolError(reason, hint=hint)
        fmt = detected
    try:
        return texts_of(record, fmt, first_turn_only, allow_empty)
    except Problem as p:
        raise PoolError(p.reason, field=p.field) from None
