"""Activation commands: point the system profile at the new closure, then run the
closure's `switch-to-configuration MODE` (done by the guard, see watchdog.py).

`switch` and `boot` set the profile (a new generation); `test` and `dry-activate`
leave it alone, like nixos-rebuild.
"""

from __future__ import annotations

from hydradeploy.deploy import nix
from hydradeploy.deploy.models import SYSTEM_PROFILE, Closure


def sets_profile(mode: str) -> bool:
    return mode in ("switch", "boot")


def changes_running_system(mode: str) -> bool:
    """Whether the live system changes (and so needs the watchdog and the join checks)."""
    return mode in ("switch", "test")


def profile_command(closure: Closure, profile: str = SYSTEM_PROFILE) -> list[str]:
    """Existing generation → --switch-generation; new closure → --set (new generation)."""
    if closure.generation is not None:
        return nix.switch_generation(closure.generation, profile)
    return nix.set_profile(closure.path, profile)


def switch_command(closure_path: str, mode: str) -> list[str]:
    return [f"{closure_path}/bin/switch-to-configuration", mode]
