"""Secrets masked out of text meant for people: error messages, ``lakeml doctor``, logs.

One function, :func:`mask_secrets`, used by every lakeml error (``LakemlError``
masks its message) and by the configuration display. It hides the password of a URI
(``scheme://user:PASS@host`` -> ``scheme://user:****@host``) and the value of a
``password=``/``secret=``/``token=``/``credential=`` pair in a query string or DSN.
"""

from __future__ import annotations

import re

MASK = "****"
SECRET_WORDS = ("secret", "password", "passwd", "pwd", "token", "credential", "access-key", "api-key",
                "apikey")
_USERINFO = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s/:@'\"]*):(?P<pw>[^\s@/'\"]+)@")
_PAIR = re.compile(r"(?P<key>\b[\w.\-]*(?:" + "|".join(re.escape(w) for w in SECRET_WORDS)
                   + r")[\w.\-]*['\"]?)(?P<sep>\s*[=:]\s*)(?P<val>'[^']*'|\"[^\"]*\"|[^\s&;,)'\"]+)", re.I)


def mask_secrets(text: str) -> str:
    """``text`` with URI passwords and ``password=...``-style values replaced by ``****``."""
    if "@" in text:
        text = _USERINFO.sub(lambda m: f"{m['head']}:{MASK}@", text)
    if any(w in text.lower() for w in SECRET_WORDS):
        text = _PAIR.sub(lambda m: f"{m['key']}{m['sep']}{MASK}", text)
    return text


def is_secret_key(key: str) -> bool:
    """True for configuration keys that hold secrets (``s3.secret-access-key``, ``token``, ``credential``...)."""
    k = key.lower()
    return any(w in k for w in SECRET_WORDS)


def mask_value(key: str, value: str) -> str:
    """A configuration value fit to print: all of it masked for a secret key, else its URI passwords."""
    if is_secret_key(key):
        return MASK if value else value
    return mask_secrets(value) if isinstance(value, str) else value
