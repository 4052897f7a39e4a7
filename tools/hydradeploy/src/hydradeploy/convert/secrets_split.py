"""Which environment values are secrets, so they never land in files under k8s/: the
rule of hydradeploy.secret_names, which k8s-check and `secrets check` share."""

from __future__ import annotations

from hydradeploy.secret_names import is_secret

__all__ = ["is_secret", "split_environment"]


def split_environment(env: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """(plain, secret) with the same keys as `env` between them."""
    plain: dict[str, str] = {}
    secret: dict[str, str] = {}
    for key, value in env.items():
        (secret if is_secret(key, value) else plain)[key] = value
    return plain, secret
