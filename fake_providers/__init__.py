"""Fake LLM providers that behave like the real ones, for testing LLM software.

`create_app(FakeOptions(...))` builds the server; `fake_providers.testing` serves it on a real port.
"""

from fake_providers.app import create_app
from fake_providers.options import FakeOptions

__all__ = ["FakeOptions", "create_app"]
