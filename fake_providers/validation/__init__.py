"""Tool-schema validators that answer the way the real providers do."""

from fake_providers.validation.anthropic_schema import anthropic_input_schema_error
from fake_providers.validation.openai_schema import openai_tool_schema_error

__all__ = ["anthropic_input_schema_error", "openai_tool_schema_error"]
