"""Typed values the deploy engine passes around."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from hydradeploy.inventory import Host

# upstream: nixpkgs pkgs/by-name/ni/nixos-rebuild-ng/src/tests/test_models.py
# @02d562cc47ca (`test_profile_from_arg`: "system" → /nix/var/nix/profiles/system); generation N is
# the link SYSTEM_PROFILE-N-link (NixOS/nix src/libstore/profiles.cc @2.8.0 `makeName`).
SYSTEM_PROFILE = "/nix/var/nix/profiles/system"


class Goal(StrEnum):
    """What a deploy does with the new closure: nixos-rebuild's four activation actions
    (nixpkgs e9a47ce, pkgs/by-name/ni/nixos-rebuild-ng/src/nixos_rebuild/models.py,
    `Action`: SWITCH, BOOT, TEST, DRY_ACTIVATE among its build actions).
    What each one implies is written here once."""

    SWITCH = "switch"
    BOOT = "boot"
    TEST = "test"
    DRY_ACTIVATE = "dry-activate"

    @property
    def sets_profile(self) -> bool:
        """A new system generation (the boot menu and the next boot use it)."""
        return self in (Goal.SWITCH, Goal.BOOT)

    @property
    def changes_running_system(self) -> bool:
        """The live system changes now: the watchdog, the confirm and the join checks."""
        return self in (Goal.SWITCH, Goal.TEST)

    @property
    def changes_nothing(self) -> bool:
        return self is Goal.DRY_ACTIVATE


MODES = tuple(g.value for g in Goal)


@dataclass(frozen=True)
class Generation:
    """One system generation of a host's profile."""

    number: int
    date: str
    current: bool

    def as_json(self) -> dict[str, Any]:
        return {"generation": self.number, "date": self.date, "current": self.current}


@dataclass(frozen=True)
class Closure:
    """What a host is to be switched to: a store path and where it came from."""

    path: str
    source: str  # "prebuilt", "build-local", "build-target", "generation N"
    generation: int | None = None  # set when switching to an existing generation


@dataclass(frozen=True)
class Wave:
    """A stage of the deploy order: its hosts are activated only after every host of
    the earlier waves finished, and at most `window` of them are activated and not yet
    verified at once (servers: 1; the agents: --max-parallel, a sliding window)."""

    index: int
    kind: str  # "cluster-init", "server", "agents"
    hosts: tuple[Host, ...]
    window: int = 1

    @property
    def names(self) -> list[str]:
        return [h.name for h in self.hosts]


@dataclass(frozen=True)
class CheckResult:
    """One named join/health check: `ok`, and what was seen when not."""

    name: str
    ok: bool
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.name}: {'ok' if self.ok else self.detail}"


@dataclass
class StepResult:
    step: str
    ok: bool
    detail: str = ""
    seconds: float = 0.0


class Outcome(StrEnum):
    DEPLOYED = "deployed"
    ROLLED_BACK = "rolled back"
    ROLLED_BACK_BY_HOST = "rolled back by the host"
    FAILED = "failed"  # failed and not rolled back (--no-rollback, or the rollback failed)
    UNREACHABLE = "unreachable"
    LOCKED = "locked"
    SKIPPED = "skipped"
    INTERRUPTED = "interrupted"
    UNCHANGED = "unchanged"  # dry-activate / boot: nothing live changed


@dataclass
class HostReport:
    """Everything that happened to one host during a deploy or rollback."""

    host: str
    outcome: Outcome = Outcome.SKIPPED
    generation_before: int | None = None
    generation_after: int | None = None
    closure_before: str | None = None
    closure_after: str | None = None
    failed_step: str | None = None
    message: str = ""
    steps: list[StepResult] = field(default_factory=list)
    failed_checks: list[CheckResult] = field(default_factory=list)
    healthy_after_rollback: bool | None = None
    ssh_connections: int = 0
    seconds: float = 0.0
    changes: list[str] = field(default_factory=list)
    #: generation_after passed its checks and is recorded so on the host (verified.py)
    verified: bool | None = None
    #: the copy step: paths, sent, bytes, substituted, seconds (closure.CopyStats)
    copy: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.outcome in (Outcome.DEPLOYED, Outcome.UNCHANGED)

    def as_json(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "outcome": str(self.outcome),
            "generation_before": self.generation_before,
            "generation_after": self.generation_after,
            "closure_before": self.closure_before,
            "closure_after": self.closure_after,
            "failed_step": self.failed_step,
            "message": self.message,
            "failed_checks": [{"check": c.name, "detail": c.detail} for c in self.failed_checks],
            "healthy_after_rollback": self.healthy_after_rollback,
            "ssh_connections": self.ssh_connections,
            "seconds": round(self.seconds, 3),
            "steps": [
                {"step": s.step, "ok": s.ok, "detail": s.detail, "seconds": round(s.seconds, 3)}
                for s in self.steps
            ],
            "changes": self.changes,
            "verified": self.verified,
            "copy": self.copy,
        }
