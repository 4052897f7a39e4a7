"""Activation commands: point the system profile at the new closure, then run the
closure's `switch-to-configuration MODE`. With the guard (switch, test) both happen inside
it, in that order (watchdog.py); without (boot) the engine runs them one after the other.

What each mode implies (profile, watchdog, checks) is `models.Goal`.
"""

from __future__ import annotations

from hydradeploy.deploy import nix
from hydradeploy.deploy.models import SYSTEM_PROFILE, Closure, Goal


def profile_command(closure: Closure, profile: str = SYSTEM_PROFILE) -> list[str]:
    """Existing generation → --switch-generation; new closure → --set (new generation)."""
    if closure.generation is not None:
        return nix.switch_generation(closure.generation, profile)
    return nix.set_profile(closure.path, profile)


def guard_profile_step(closure: Closure, goal: Goal) -> str:
    """What the guard does to the profile before activating (watchdog.GuardArgs.set_profile):
    nothing for a goal that keeps the profile (test), else as `profile_command`."""
    if not goal.sets_profile:
        return "none"
    if closure.generation is not None:
        return str(closure.generation)
    return "set"


def switch_command(closure_path: str, mode: str) -> list[str]:
    return [f"{closure_path}/bin/switch-to-configuration", mode]
