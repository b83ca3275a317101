"""The fake's embeddings: a vector a test can recompute from the input text alone."""

from __future__ import annotations

import hashlib
import math
import random
import struct


def native_dimensions(model: str) -> int:
    return 3072 if "large" in model else 1536


def vector_for(text: str, dimensions: int) -> list[float]:
    """The fake's embedding of ``text``: ``dimensions`` float32 values, unit length."""
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")
    rng = random.Random(seed)
    values = [rng.uniform(-1.0, 1.0) for _ in range(dimensions)]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return list(struct.unpack(f"<{dimensions}f", struct.pack(f"<{dimensions}f", *(v / norm for v in values))))


def input_text(item: str | list[int]) -> str:
    return item if isinstance(item, str) else "tokens:" + ",".join(str(t) for t in item)
