"""Activation commands: point the system profile at the new closure, then run the
closure's `switch-to-configuration MODE` (done by the guard, see watchdog.py).

What each mode implies (profile, watchdog, checks) is `models.Goal`.
"""

from __future__ import annotations

from hydradeploy.deploy import nix
from hydradeploy.deploy.models import SYSTEM_PROFILE, Closure


def profile_command(closure: Closure, profile: str = SYSTEM_PROFILE) -> list[str]:
    """Existing generation → --switch-generation; new closure → --set (new generation)."""
    if closure.generation is not None:
        return nix.switch_generation(closure.generation, profile)
    return nix.set_profile(closure.path, profile)


def switch_command(closure_path: str, mode: str) -> list[str]:
    return [f"{closure_path}/bin/switch-to-configuration", mode]
