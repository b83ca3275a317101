"""Constrained numbers shared by the settings Structs."""

from __future__ import annotations

from typing import Annotated

import msgspec

# A limit of 0 would read as "no limit" to the limiter: limits are positive or absent.
PositiveInt = Annotated[int, msgspec.Meta(ge=1)]
NonNegative = Annotated[float, msgspec.Meta(ge=0)]
