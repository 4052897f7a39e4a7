"""Lab closures with payload (many store paths the closure references) and the lab's
signed binary cache: hosts substitute from it, and refuse a cache that is unsigned or
signed with a key they do not trust (Nix 2.8: local-store.cc `pathInfoIsUntrusted`,
build/substitution-goal.cc; see lab/cache.py)."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
import zlib
from pathlib import Path

import pytest
from hydradeploy.lab import HostSpec, Lab, cache, payload, processes
from hydradeploy.lab.state import STATE_FILE, LabState

pytestmark = pytest.mark.lab

MIB = 1 << 20


@pytest.fixture(scope="module")
def lab(lab_factory) -> Lab:
    return lab_factory([HostSpec("srv", "server"), HostSpec("w1", "agent")])


def nix_store(*args: str) -> str:
    proc = subprocess.run(
        ["nix-store", *args], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def valid_on(lab: Lab, host: str, path: str) -> bool:
    return lab.run(host, ["nix-store", "--check-validity", path]).returncode == 0


def test_payload_sizes_are_exact_varied_and_seeded() -> None:
    sizes = payload.sizes(200, "w1")
    assert sum(sizes) == 200 * MIB
    assert len(sizes) == payload.MAX_PATHS
    assert max(sizes) > 8 * min(sizes)  # a few big paths, many small ones
    assert payload.sizes(200, "w1") == sizes
    assert payload.sizes(200, "w2") != sizes
    assert payload.sizes(3, "w1") and sum(payload.sizes(3, "w1")) == 3 * MIB
    assert len(payload.sizes(3, "w1")) == 3


def test_closure_with_payload_references_many_incompressible_paths(lab: Lab) -> None:
    top = lab.closure("w1", payload_mib=8)
    paths = payload.paths_of(top)
    assert len(paths) == 8
    assert set(paths) <= set(nix_store("--query", "--requisites", top).split())
    sizes = [int(nix_store("--query", "--size", p)) for p in paths]
    assert sum(sizes) >= 8 * MIB
    data = Path(max(paths, key=lambda p: int(nix_store("--query", "--size", p))))
    blob = (data / "share" / "hydra-lab-payload" / "data.bin").read_bytes()[:MIB]
    assert len(zlib.compress(blob)) > 0.99 * len(blob)  # incompressible
    # input-addressed (built, with a deriver): a binary cache has to sign them
    assert nix_store("--query", "--deriver", paths[0]).strip().endswith(".drv")
    # same host and size: the payload is shared; another seed: new paths
    again = lab.closure("w1", payload_mib=8)
    assert again != top and payload.paths_of(again) == paths
    other = lab.closure("w1", payload_mib=8, payload_seed="other")
    assert not set(payload.paths_of(other)) & set(paths)


def test_closure_with_payload_still_activates(lab: Lab) -> None:
    top = lab.closure("w1", payload_mib=2)
    lab.copy_closure("w1", top)
    assert all(valid_on(lab, "w1", p) for p in payload.paths_of(top))
    proc = lab.run("w1", [f"{top}/bin/switch-to-configuration", "test"], timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert lab.run("w1", ["readlink", "/run/current-system"]).stdout.strip() == top
    assert not payload.paths_of(lab.closure("w1"))  # no payload unless asked


def test_host_substitutes_from_the_lab_cache(lab: Lab, cli) -> None:
    top = lab.closure("w1", payload_mib=4, payload_seed="subst")
    paths = payload.paths_of(top)
    proc = cli("lab", "cache", "--dir", str(lab.dir), *paths)
    assert proc.returncode == 0, proc.stderr
    url = proc.stdout.strip().splitlines()[-1]
    assert url == lab.cache_url and url.startswith(f"http://{lab_gateway(lab)}:")
    # the server outlived the CLI process that started it
    with urllib.request.urlopen(f"{url}/nix-cache-info", timeout=5) as resp:
        assert b"StoreDir: /nix/store" in resp.read()
    conf = lab.run("srv", ["cat", "/etc/nix/nix.conf"]).stdout
    assert f"substituters = {url}\n" in conf
    assert f"trusted-public-keys = {lab.cache_public_key}\n" in conf
    target = paths[0]
    assert not valid_on(lab, "w1", target)
    log_before = (lab.dir / cache.LOG).read_text()
    proc = lab.run("w1", ["nix-store", "--realise", target], timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert f"from '{url}'" in proc.stderr  # Nix says where it substituted from
    assert valid_on(lab, "w1", target)
    assert lab.run("w1", ["nix-store", "--verify-path", target]).returncode == 0
    new_log = (lab.dir / cache.LOG).read_text()[len(log_before) :]
    address = lab.address("w1")
    assert f'{address} "GET /{Path(target).name.split("-")[0]}.narinfo' in new_log
    assert f'{address} "GET /nar/' in new_log
    # --output json: what the cache now holds for these paths
    proc = cli("lab", "cache", "--dir", str(lab.dir), "--output", "json", *paths)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["url"] == url and info["public_key"] == lab.cache_public_key
    assert info["paths"] == sorted(paths)  # payload paths have no references
    assert info["nar_bytes"] >= 4 * MIB
    # `nix copy --from` the cache works too, signatures checked
    other = paths[1]
    proc = lab.run(
        "w1", [*cache.NIX_COMMAND, "copy", "--from", url, other], timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert valid_on(lab, "w1", other)


def test_key_pair_lives_in_the_lab_dir_only(lab: Lab) -> None:
    if lab.cache_public_key is None:
        lab.cache(payload.paths_of(lab.closure("w1", payload_mib=1)))
    secret = lab.dir / cache.SECRET_KEY
    assert secret.stat().st_mode & 0o777 == 0o600
    body = secret.read_text().split(":", 1)[1].strip()
    # nowhere in what the hosts received (their stores hold the cached paths)
    grep = lab.run("w1", ["grep", "-rlF", body, "/nix/store"], timeout=120)
    assert grep.returncode == 1, grep.stdout


def lab_gateway(lab: Lab) -> str:
    state = LabState.load(lab.dir)
    assert state is not None
    return state.gateway


@pytest.mark.parametrize("signing", ["unsigned", "foreign-key"])
def test_host_refuses_a_cache_it_does_not_trust(
    lab: Lab, tmp_path: Path, signing: str
) -> None:
    top = lab.closure("w1", payload_mib=2, payload_seed=f"refuse-{signing}")
    target = payload.paths_of(top)[0]
    rogue = tmp_path / "cache"
    key = None
    if signing == "foreign-key":
        key = tmp_path / "other.sec"
        cache.generate_key(key, tmp_path / "other.pub", "not-the-lab-1")
    cache.fill(rogue, [target], key)
    narinfo = (rogue / f"{Path(target).name.split('-')[0]}.narinfo").read_text()
    assert ("Sig: not-the-lab-1:" in narinfo) == (signing == "foreign-key")
    state = LabState.load(lab.dir)
    assert state is not None
    pid, port = cache.serve(
        rogue, state.gateway, state.bridge, lab.dir / STATE_FILE, tmp_path / "log"
    )
    try:
        url = f"http://{state.gateway}:{port}"
        proc = lab.run(
            "w1", ["nix-store", "--realise", target, "--option", "substituters", url],
            timeout=60,
        )  # fmt: skip
        assert proc.returncode != 0
        assert (
            "is not signed by any of the keys in 'trusted-public-keys'" in proc.stderr
        )
        proc = lab.run(
            "w1", [*cache.NIX_COMMAND, "copy", "--from", url, target], timeout=60
        )
        assert proc.returncode != 0
        assert "lacks a valid signature" in proc.stderr
        assert not valid_on(lab, "w1", target)
        # the host fetched the narinfo (so it really asked this cache), nothing was added
        assert "narinfo" in (tmp_path / "log").read_text()
    finally:
        processes.kill(pid, 9)
        processes.wait_gone(pid, 5)
        processes.reap(pid)


def test_cache_rejects_paths_not_in_the_store(lab: Lab, cli) -> None:
    bogus = "/nix/store/00000000000000000000000000000000-nothing"
    proc = cli("lab", "cache", "--dir", str(lab.dir), bogus)
    assert proc.returncode == 2
    assert bogus in proc.stderr and "Traceback" not in proc.stderr
    proc = cli("lab", "closure", "--dir", str(lab.dir), "w1", "--payload-mib", "1",
               "--payload-seed", "no spaces")  # fmt: skip
    assert proc.returncode == 2 and "--payload-seed" in proc.stderr


def test_down_stops_the_cache_server_and_removes_the_cache(lab_factory) -> None:
    small = lab_factory([HostSpec("solo", "server")])
    # before `lab cache`: no substituter at all (not Nix's default cache.nixos.org)
    shown = small.run("solo", [*cache.NIX_COMMAND, "show-config"]).stdout.splitlines()
    assert "substituters = " in shown
    small.cache(payload.paths_of(small.closure("solo", payload_mib=1)))
    state = LabState.load(small.dir)
    assert state is not None and state.cache_pid and cache.is_server(state.cache_pid)
    pid = state.cache_pid
    # a reboot keeps the host's nix.conf (its own upper layer) and the server runs on
    boots = small.boots("solo")
    small.reboot("solo")
    deadline = time.monotonic() + 60
    while small.boots("solo") == boots or small.leader_pid("solo") is None:
        assert time.monotonic() < deadline, "solo did not boot again"
        time.sleep(0.1)
    small.wait_booted("solo")
    conf = small.run("solo", ["cat", "/etc/nix/nix.conf"]).stdout
    assert f"substituters = {small.cache_url}\n" in conf
    assert cache.is_server(pid)
    small.down()
    assert not cache.is_server(pid)
    assert not os.path.exists(small.dir / cache.CACHE_DIR)
    assert not os.path.exists(small.dir / cache.SECRET_KEY)


def test_cache_server_exits_once_its_lab_is_gone(lab: Lab, tmp_path: Path) -> None:
    """A lab cleaned up without its lab.json (after a crash) leaves no server behind."""
    state = LabState.load(lab.dir)
    assert state is not None
    marker = tmp_path / "lab.json"
    marker.write_text("{}")
    (tmp_path / "cache").mkdir()
    pid, _ = cache.serve(
        tmp_path / "cache", state.gateway, state.bridge, marker, tmp_path / "log"
    )
    try:
        assert cache.is_server(pid)
        marker.unlink()
        processes.wait_gone(pid, 5)
        processes.reap(pid)
        assert not cache.is_server(pid)
    finally:
        processes.kill(pid, 9)
        processes.reap(pid)
