"""Is this a structurally valid JSON Schema (draft 2020-12)? The `jsonschema` library answers, with
the message OpenAI's errors carry (they come from the same library): `None is not of type 'array'`.

Only keyword *shapes* are checked (what the draft 2020-12 meta-schema checks); neither whether a
`$ref` resolves nor whether a `format` value (a `pattern`'s regex, say) is well formed. When a
schema has several problems, the one reported is the one `jsonschema.exceptions.best_match`
picks: the least deep in the schema first.
"""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

# Validates schemas against the meta-schema; built once (it compiles the meta-schema's references).
_META_VALIDATOR = Draft202012Validator(Draft202012Validator.META_SCHEMA)


def metaschema_error(schema: Any) -> str | None:
    """The structural problem in `schema`, or None when it is a valid JSON Schema."""
    error = best_match(_META_VALIDATOR.iter_errors(schema))
    return None if error is None else error.message
