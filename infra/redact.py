"""Secrets never printed: one helper for URLs, settings and error messages.

Everything a command prints that may hold a setting or a store's address (``veracity settings``,
every one-line error, status lines and logs of the service stack) passes through
:func:`redact`. It masks a URL's password, URL query parameters named like secrets, and any
value of an environment variable named like a secret (``AWS_SECRET_ACCESS_KEY``,
``PGPASSWORD``, ``MLFLOW_TRACKING_PASSWORD``, ...) wherever it appears in the text.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping

MASK = "***"
SECRET_HINTS = ("password", "passwd", "secret", "token", "access_key", "credential")
# userinfo of a URL: everything between "scheme://user:" and the last "@" before the path
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s/:@]*:)[^\s/]*(?=@)")
_QUERY_SECRET = re.compile(
    r"(?P<head>[?&][^=&\s]*(?:" + "|".join(SECRET_HINTS) + r")[^=&\s]*=)[^&\s#]+", re.IGNORECASE
)
_SHORTEST = 4  # shorter values ("1", "yes") would mask ordinary words


def is_secret_name(name: str) -> bool:
    return any(hint in name.lower() for hint in SECRET_HINTS)


def secret_values(environ: Mapping[str, str] | None = None) -> list[str]:
    """Values of the environment's secret-named variables, longest first (so that a secret
    containing another is masked whole)."""
    env = os.environ if environ is None else environ
    found = {v for k, v in env.items() if is_secret_name(k) and len(v) >= _SHORTEST}
    return sorted(found, key=len, reverse=True)


def redact(text: str, secrets: Iterable[str] | None = None) -> str:
    """``text`` with every password, secret query parameter and known secret value masked."""
    out = _URL_PASSWORD.sub(lambda m: m["head"] + MASK, text)
    out = _QUERY_SECRET.sub(lambda m: m["head"] + MASK, out)
    for value in secret_values() if secrets is None else secrets:
        out = out.replace(value, MASK)
    return out
