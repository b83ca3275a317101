"""The one exception of the settings: where the mistake is and what is wrong."""

from __future__ import annotations


class ConfigError(Exception):
    """A configuration mistake: where it is and what is wrong."""

    def __init__(self, source: str, key: str, reason: str) -> None:
        self.source = source
        self.key = key
        self.reason = reason
        where = f"{source}: {key}" if key else source
        super().__init__(f"{where}: {reason}")
