"""Upstream text made safe to show a client.

An upstream's error message may quote the credential it was sent (``Incorrect API key provided:
sk-PROV****c123``) or name the address it runs at. The gateway's clients must see neither: before
upstream text goes into an error body, anything key-like becomes ``[redacted]`` and any URL, host
and port or IP address becomes ``[address]``. The logs keep the original text.
"""

from __future__ import annotations

import re

REDACTED = "[redacted]"
ADDRESS = "[address]"

_SECRETS = re.compile(
    r"""
    (?i:bearer|basic)\s+[^\s"',;]+                          # an Authorization header's credentials
    | (?i:x-api-key|api[_-]?key|access[_-]?token|auth[_-]?token|secret|password)
      ["']?\s*[:=]\s*["']?[^\s"',;&]{4,}                  # a named secret: api_key=..., "secret": "..."
    | \b(?:sk|pk|rk|gsk|xai|hf|ghp|gho|ghs|glpat)[-_](?=[A-Za-z0-9_\-*.]{6})[A-Za-z0-9_\-*.]*[A-Za-z0-9_\-*]  # vendor keys
    | \b(?:AIza|AKIA)[A-Za-z0-9_\-]{12,}
    | [A-Za-z0-9+/_\-]{32,}={0,2}                           # long tokens (hex, base64): see _secret
    """,
    re.VERBOSE,
)
_ADDRESSES = re.compile(
    r"""
    \b[a-z][a-z0-9+.-]*://[^\s"'<>]+                     # a URL, any scheme
    | \[[0-9A-Fa-f:]*:[0-9A-Fa-f:]*\](?::\d{1,5})?       # [IPv6] and port
    | \b\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?\b           # IPv4 and port
    | \b(?:localhost|[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+):\d{1,5}\b  # host:port
    | \b[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.(?:internal|local|lan|svc|corp)\b  # private names
    | \b[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+\.[A-Za-z]{2,}\b  # host names of three labels or more
    """,
    re.VERBOSE,
)


def scrub(text: str) -> str:
    """``text`` without credentials and addresses (addresses first: a URL may carry a key)."""
    if not text:
        return text
    return _SECRETS.sub(_secret, _ADDRESSES.sub(ADDRESS, text))


def _secret(match: re.Match[str]) -> str:
    token = match[0]
    if len(token) >= 32 and token[0].isalnum() and not _is_secret_like(token):
        return token  # a long word without digits, or a path of words: no secret
    return REDACTED


def _is_secret_like(token: str) -> bool:
    """A long run of letters and digits mixed (a key, a digest), not words joined by dashes."""
    body = token.rstrip("=")
    has_digit = any(c.isdigit() for c in body)
    has_alpha = any(c.isalpha() for c in body)
    longest = max(len(part) for part in re.split(r"[-_/+]", body))
    return has_digit and has_alpha and longest >= 16
