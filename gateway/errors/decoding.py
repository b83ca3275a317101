"""What decoding JSON from outside may raise.

``msgspec`` raises ``DecodeError`` for malformed text, ``ValidationError`` for a value of the
wrong type and even untyped for an integer beyond 64 bits, and ``RecursionError`` for arrays
or objects nested deeper than it follows. Every decode of a client's (or an upstream's) JSON
catches all three, so none of them can become a 500.
"""

from __future__ import annotations

import msgspec

MALFORMED_JSON: tuple[type[Exception], ...] = (msgspec.DecodeError, msgspec.ValidationError, RecursionError)
