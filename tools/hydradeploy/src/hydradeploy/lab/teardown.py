"""Taking a lab down: every namespace, process, mount and file, also after a crash."""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

from hydradeploy.lab import cache, network, processes
from hydradeploy.lab.state import REGISTRY, STATE_FILE, LabState, indexes_of, release_index

# What a lab writes into its directory (a directory the user made is otherwise left alone).
LAB_FILES = ("lab.lock", "inventory.toml", "known_hosts", "id_ed25519", "id_ed25519.pub",
             "hosts", STATE_FILE, *cache.FILES)  # fmt: skip


def down(lab_dir: Path) -> None:
    """Idempotent. Finds the lab from lab.json, or from the subnet registry without it."""
    state = LabState.load(lab_dir)
    indexes = set(indexes_of(lab_dir))
    if state is not None:
        indexes.add(state.index)
    netns: set[str] = set()
    existing = network.netns_list()
    for index in indexes:
        netns.update(n for n in existing if n.startswith(f"hydralab{index}-"))
    if state is not None:
        netns.update(h.netns for h in state.hosts.values() if h.netns in existing)
        # Power the machines off from the inside out: killing a host's PID 1 ends its
        # PID namespace; systemd-nspawn then exits and its keeper with it, each parent
        # collecting its child. Killing them all at once would leave nspawn's children
        # to an init that may never collect them (zombies).
        keepers = [h.keeper_pid for h in state.hosts.values()
                   if h.keeper_pid and processes.is_keeper(h.keeper_pid)]  # fmt: skip
        for name in state.hosts:
            leader = processes.machine_leader(lab_dir / "hosts" / name / "nspawn.pid")
            if leader is not None:
                processes.kill(leader, signal.SIGKILL)
        for pid in keepers:
            processes.wait_gone(pid, 5)
            processes.kill(pid, signal.SIGKILL)
    if state is not None and state.cache_pid and cache.is_server(state.cache_pid):
        # The binary cache server runs in the runner's namespace (on the bridge's
        # address), so the namespace sweep below would not find it.
        processes.kill(state.cache_pid, signal.SIGKILL)
        processes.wait_gone(state.cache_pid, 5)
        processes.reap(state.cache_pid)
    for ns in sorted(netns):
        processes.kill_netns(ns)
        network.delete_netns(ns)
    if state is not None:
        for h in state.hosts.values():
            if h.keeper_pid:
                processes.reap(h.keeper_pid)
    for index in sorted(indexes):
        network.delete_bridge(f"hl{index}br")
        release_index(index, lab_dir)
    if state is not None and state.created_dir:
        shutil.rmtree(lab_dir, ignore_errors=True)
    elif lab_dir.is_dir():
        for entry in LAB_FILES:
            path = lab_dir / entry
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


def reap_orphans() -> list[Path]:
    """Take down ephemeral labs (test runs) whose owning process is gone, e.g. a test run
    that was SIGKILLed. Labs made by the CLI are the user's and are left alone."""
    reaped = []
    for entry in sorted(REGISTRY.glob("net-*")) if REGISTRY.is_dir() else []:
        try:
            lab_dir = Path(entry.read_text().strip())
        except OSError:
            continue
        try:
            state = LabState.load(lab_dir) if lab_dir.is_dir() else None
        except (TypeError, ValueError, KeyError):
            continue  # a lab written by another version of hydradeploy: not ours to judge
        owner = state.owner_pid if state is not None else None
        if state is not None and (owner is None or Path(f"/proc/{owner}").exists()):
            continue
        if state is None and lab_dir.exists():
            continue  # an `up` in progress that has not written lab.json yet
        down(lab_dir)
        reaped.append(lab_dir)
    return reaped
