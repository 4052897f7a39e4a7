"""Refusals decided from the preflight probe alone, before the lock or any copy, so
that a host which cannot take a deploy says why in one line instead of failing later
with a confusing error (a full store ends `nix-store --import` with an SQLite I/O error
at step `copy`)."""

from __future__ import annotations

from hydradeploy.deploy.closure import SPACE_MARGIN
from hydradeploy.deploy.models import CheckResult
from hydradeploy.deploy.probe import HostState

# The slack the copy step keeps above the closure's size: the Nix database, the lock
# and guard files and the new profile link need room before a single path arrives.
MIN_STORE_FREE_KB = SPACE_MARGIN // 1024


def refusal(host: str, st: HostState) -> str:
    """'' when the host can take a deploy as far as preflight can tell, else why not."""
    if st.store_free_kb is not None and st.store_free_kb < MIN_STORE_FREE_KB:
        return (
            f"{host}: /nix/store has {st.store_free_kb // 1024} MiB free, at least "
            f"{MIN_STORE_FREE_KB // 1024} MiB are needed; free space (nix-collect-garbage) first"
        )
    return ""


def profile_check(st: HostState) -> CheckResult:
    """`profile`: the system profile points at what runs. When it does not (a deployer
    killed between setting the profile and arming the guard, `--no-rollback`, `--mode
    test`), the next boot starts a closure other than the one the checks just saw."""
    if st.consistent:
        return CheckResult("profile", True)
    return CheckResult(
        "profile",
        False,
        f"the system profile (generation {st.generation}) is {st.profile_path or 'unset'}, "
        f"but {st.current or 'nothing'} runs; the next boot would change the system",
    )
