"""Anthropic's checks on a tool's `input_schema`, with Anthropic's messages.

The schema must be an object with `"type": "object"`, must not put `oneOf`/`allOf`/`anyOf` at its
top level, and must be a valid JSON Schema draft 2020-12. The messages start at the `input_schema`
location; Anthropic prefixes them with the tool's position, e.g. `tools.3.custom.`.
The wording of the `type` messages follows Anthropic's validation style and is not a captured text.
"""

from __future__ import annotations

from fake_providers.validation.metaschema import metaschema_error

INVALID_SCHEMA = (
    "input_schema: JSON schema is invalid. It must match JSON Schema draft 2020-12 "
    "(https://json-schema.org/draft/2020-12). Learn more about tool use at "
    "https://docs.claude.com/en/docs/tool-use."
)
TOP_LEVEL_COMBINATOR = "input_schema: input_schema does not support oneOf, allOf, or anyOf at the top level"


def anthropic_input_schema_error(schema: object) -> str | None:
    """None when Anthropic accepts `schema` as a tool's `input_schema`; otherwise Anthropic's message,
    starting at the `input_schema` location (e.g. `input_schema: JSON schema is invalid. ...`)."""
    if not isinstance(schema, dict):
        return "input_schema: Input should be a valid dictionary"
    if "type" not in schema:
        return "input_schema.type: Field required"
    if schema["type"] != "object":
        return "input_schema.type: Input should be 'object'"
    if any(keyword in schema for keyword in ("oneOf", "allOf", "anyOf")):
        return TOP_LEVEL_COMBINATOR
    if metaschema_error(schema) is not None:
        return INVALID_SCHEMA
    return None
