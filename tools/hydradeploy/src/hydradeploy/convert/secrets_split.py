"""Which environment values are secrets, so they never land in files under k8s/.

A variable is secret when a `_`-separated part of its name is one of SECRET_WORDS
(DB_PASSWORD, OPENAI_API_KEY, WEBUI_SECRET_KEY), or its value carries credentials in a
URL (`postgres://user:pw@db`). Names ending in _FILE or _PATH point at files, and
boolean-looking values (ENABLE_API_KEY=true) switch features: both stay plain.
"""

from __future__ import annotations

import re

SECRET_WORDS = frozenset(
    {
        "PASSWORD", "PASSWD", "PASS", "PWD", "SECRET", "SECRETS", "TOKEN", "TOKENS",
        "KEY", "APIKEY", "CREDENTIAL", "CREDENTIALS", "CREDS", "PRIVATE", "SALT",
        "PASSPHRASE", "COOKIE", "JWT", "WEBHOOK", "DSN", "ACCESSKEY", "HMAC",
    }
)  # fmt: skip
_URL_CREDENTIALS = re.compile(r"[a-z][a-z0-9+.-]*://[^/@\s:]+:[^/@\s]+@", re.IGNORECASE)
_NOT_SECRET_VALUES = frozenset({"true", "false", "yes", "no", "0", "1", "on", "off", "none"})
_PARTS = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z])(?=[A-Z])")


def is_secret(name: str, value: str) -> bool:
    if not value or value.lower() in _NOT_SECRET_VALUES:
        return False
    upper = name.upper()
    if upper.endswith(("_FILE", "_PATH", "_DIR")):
        return False
    if any(part.upper() in SECRET_WORDS for part in _PARTS.split(name) if part):
        return True
    return bool(_URL_CREDENTIALS.search(value))


def split_environment(env: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """(plain, secret) with the same keys as `env` between them."""
    plain: dict[str, str] = {}
    secret: dict[str, str] = {}
    for key, value in env.items():
        (secret if is_secret(key, value) else plain)[key] = value
    return plain, secret
