"""The one rule for "this variable holds a secret", shared by the converter (which moves
such values into Secrets), `k8s-check` (no literal secret under k8s/) and `secrets check`
(the plaintext scan), so the three never disagree (issue 14: pi-hole's WEBPASSWORD
stayed a literal because one of them split names into words).

A name is secret when it contains PASSWORD, PASSWD, PASSPHRASE, SECRET, TOKEN, KEY or
CREDENTIAL anywhere (WEBPASSWORD, clientSecret, APIKEY), or one of its `_`/camelCase
parts is a short secret word (DB_PASS, JWT, SALT) — unless it names a reference to a
secret rather than the secret itself (DB_PASSWORD_FILE, secretName, TOKEN_TTL,
PUBLIC_KEY, host_key). A value is secret under a secret name unless it is empty or a
switch (true/false/yes/no/on/off/0/1/none); any value carrying `user:password@` in a URL
is secret whatever its name.
"""

from __future__ import annotations

import functools
import re

SECRET_SUBSTRINGS = ("PASSWORD", "PASSWD", "PASSPHRASE", "SECRET", "TOKEN", "KEY", "CREDENTIAL")
SECRET_PARTS = frozenset(
    {"PASS", "PWD", "CREDS", "PRIVATE", "SALT", "COOKIE", "JWT", "WEBHOOK", "DSN", "HMAC"}
)
# the last part says the variable points at or describes a secret, it is not one
REFERENCE_LAST_PARTS = frozenset(
    {
        "FILE", "FILES", "PATH", "DIR", "NAME", "NAMES", "REF", "KEYS", "TYPE", "LENGTH",
        "LEN", "TTL", "EXPIRY", "EXPIRES", "EXPIRATION", "ALGORITHM", "ALG", "HEADER",
    }
)  # fmt: skip
REFERENCE_PARTS = frozenset({"PUBLIC", "PUB"})
NOT_SECRET_VALUES = frozenset({"", "true", "false", "yes", "no", "0", "1", "on", "off", "none"})
_PARTS = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])")
_URL_CREDENTIALS = re.compile(r"[a-z][a-z0-9+.-]*://[^/@\s:]+:[^/@\s]+@", re.IGNORECASE)


def _parts(name: str) -> list[str]:
    return [p.upper() for p in _PARTS.split(name) if p]


def is_reference_name(name: str) -> bool:
    parts = _parts(name)
    if not parts:
        return False
    upper = "_".join(parts)
    return (
        parts[-1] in REFERENCE_LAST_PARTS
        or any(p in REFERENCE_PARTS for p in parts)
        or "HOST_KEY" in upper
    )


# names recur across containers (TZ, PUID, …): each is judged once per process
@functools.lru_cache(maxsize=4096)
def is_secret_name(name: str) -> bool:
    parts = _parts(name)
    upper = "".join(parts)
    named = any(w in upper for w in SECRET_SUBSTRINGS) or any(p in SECRET_PARTS for p in parts)
    return named and not is_reference_name(name)


def has_url_credentials(value: str) -> bool:
    return bool(_URL_CREDENTIALS.search(value))


# the converter judges each NAME=VALUE pair, then k8s-check's no-secrets check over its
# output asks again for the same pairs: answered from here the second time
@functools.lru_cache(maxsize=16384)
def is_secret(name: str, value: str) -> bool:
    """Whether NAME=VALUE must not stay a literal in a manifest."""
    if value.strip().lower() in NOT_SECRET_VALUES:
        return False
    return is_secret_name(name) or has_url_credentials(value)
