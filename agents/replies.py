"""An LLM's reply read as a schema: strictly parsed, then every text cut to what the schema allows.

Both the agents' calls (`agents.base`) and the endpoint's preflight
(`agents.llm.preflight`) read replies this way; it lives apart from both so
neither has to import the other.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)
CUT = "…[cut]"
# A text field without a cap of its own (a categorical value, a free knob name) is cut here.
DEFAULT_TEXT_CHARS = 200


def parse_reply(schema: type[M], text: str) -> M:
    """``text`` as a validated ``schema``, read strictly.

    Prose or code fences around the one JSON object are tolerated; truncated
    JSON is not. Errors are `ValueError` with a message short enough to feed
    back to a small model.
    """
    first, last = text.find("{"), text.rfind("}")
    if first < 0:
        raise ValueError("the reply holds no JSON object.")
    end = last + 1 if last > first else len(text)
    try:
        data = json.loads(text[first:end], strict=False)  # raw newlines in strings: grammars allow them
    except json.JSONDecodeError as exc:
        raise ValueError(f"the reply is not valid JSON ({exc.msg} at character {exc.pos}).") from None
    except ValueError as exc:  # a number too long to read (Python refuses ints of more than 4,300 digits)
        raise ValueError(f"the reply holds a value that cannot be read ({str(exc)[:80]}).") from None
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        problems = [f"{'.'.join(map(str, e['loc'])) or 'reply'}: {e['msg']}" for e in exc.errors()[:6]]
        raise ValueError("the JSON does not fit the required shape: " + "; ".join(problems) + ".") from None


def cap_texts(model: M) -> M:
    """``model`` with every text field cut to its schema's ``maxLength`` (else `DEFAULT_TEXT_CHARS`), marked `CUT`.

    The caps are the ones the grammar enforces on servers that honour the
    schema; this holds them for servers that do not.
    """
    updates: dict[str, Any] = {}
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        cap = extra.get("maxLength")
        limit = int(cap) if isinstance(cap, int) else DEFAULT_TEXT_CHARS
        if isinstance(value, str) and len(value) > limit:
            updates[name] = value[: max(0, limit - len(CUT))] + CUT
        elif isinstance(value, BaseModel):
            updates[name] = cap_texts(value)
        elif isinstance(value, list) and any(isinstance(v, BaseModel) for v in value):
            updates[name] = [cap_texts(v) if isinstance(v, BaseModel) else v for v in value]
    return model.model_copy(update=updates) if updates else model
