"""The lab's binary cache: closures put into a signed `file://` binary cache in the lab
directory, served over HTTP on the lab network, and trusted by every lab host's Nix.

Upstream facts (Nix 2.8.0, Debian's nix-bin here; NixOS/nix tag 2.8.0):
- `nix-store --generate-binary-cache-key NAME SECRET PUBLIC` writes a key pair
  (src/nix-store/nix-store.cc, `opGenerateBinaryCacheKey`).
- `nix copy --to 'file://DIR?secret-key=FILE&compression=…'`: a binary cache store signs
  each path's narinfo with `secret-key` (src/libstore/binary-cache-store.hh `secretKeyFile`
  "secret-key", binary-cache-store.cc `narInfo->sign`); `compression` takes xz, bzip2,
  gzip, zstd or none (binary-cache-store.hh). `nix` commands need the `nix-command`
  experimental feature in 2.8 (globals.hh `experimental-features`).
- nix.conf `substituters` (default https://cache.nixos.org/) and `trusted-public-keys`
  (src/libstore/globals.hh); `require-sigs` (default true): a non-content-addressed path
  substituted or copied in must be signed by one of `trusted-public-keys`
  (local-store.cc `pathInfoIsUntrusted`, "cannot add path '%s' because it lacks a valid
  signature"; build/substitution-goal.cc skips such a substituter with "the substitute
  for '%s' from '%s' is not signed by any of the keys in 'trusted-public-keys'").
- `http://` URLs are Nix's HTTP binary cache store (http-binary-cache-store.cc
  `uriSchemes`).

Layout in the lab directory: `cache/` (the binary cache), `cache-key.sec` (0600) and
`cache-key.pub` (never in a store path), `cache.log` (the server's request log).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hydradeploy.errors import OperationFailed, UserError
from hydradeploy.lab import processes

SERVER = Path(__file__).parent / "cache_server.py"
CACHE_DIR = "cache"
SECRET_KEY = "cache-key.sec"
PUBLIC_KEY = "cache-key.pub"
LOG = "cache.log"
FILES = (CACHE_DIR, SECRET_KEY, PUBLIC_KEY, LOG)  # what `lab down` removes
NIX_CONF = "/etc/nix/nix.conf"
# Incompressible payload gains nothing from compression; zstd keeps the cache realistic
# (a compressed NAR, as cache.nixos.org serves) at little CPU cost.
COMPRESSION = "zstd"
NIX_COMMAND = ["nix", "--extra-experimental-features", "nix-command"]


def _run(argv: list[str], what: str, timeout: float = 1800) -> bytes:
    proc = subprocess.run(argv, capture_output=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip().splitlines()
        raise OperationFailed(f"lab cache: {what}: {err[-1] if err else 'failed'}")
    return proc.stdout


def generate_key(secret: Path, public: Path, name: str) -> str:
    """Make a signing key pair (secret mode 0600) unless SECRET exists; returns the
    public key (`NAME:BASE64`)."""
    if not secret.exists():
        tmp = secret.with_suffix(".tmp")
        _run(["nix-store", "--generate-binary-cache-key", name, str(tmp), str(public)],
             "nix-store --generate-binary-cache-key")  # fmt: skip
        os.chmod(tmp, 0o600)
        os.replace(tmp, secret)
    return public.read_text().strip()


def _valid(paths: list[str]) -> bool:
    proc = subprocess.run(
        ["nix-store", "--check-validity", *paths], capture_output=True, timeout=60, check=False
    )  # fmt: skip
    return proc.returncode == 0


def check_paths(paths: list[str]) -> None:
    """Each PATH must be a valid path of the runner's store (exit 2 naming it)."""
    if all(p.startswith("/nix/store/") for p in paths) and _valid(paths):
        return  # one call for the usual case
    for path in paths:
        if not (path.startswith("/nix/store/") and _valid([path])):
            raise UserError(f"lab cache: {path}: not a valid path of this machine's Nix store")


def closure_of(paths: list[str]) -> tuple[list[str], int]:
    """(every path in the closures of PATHS, their total NAR size in bytes)."""
    out = _run(["nix-store", "--query", "--requisites", *paths], "nix-store --query --requisites")
    closure = sorted(set(out.decode().split()))
    sizes = _run(["nix-store", "--query", "--size", *closure], "nix-store --query --size")
    return closure, sum(int(n) for n in sizes.decode().split())


def fill(cache_dir: Path, paths: list[str], secret_key: Path | None) -> None:
    """Copy the closures of PATHS from the runner's store into the binary cache
    CACHE_DIR, signing them with SECRET_KEY (None: unsigned, for tests of refusal)."""
    url = f"file://{cache_dir}?compression={COMPRESSION}"
    if secret_key is not None:
        url += f"&secret-key={secret_key}"
    _run([*NIX_COMMAND, "copy", "--to", url, *paths], f"nix copy --to file://{cache_dir}")


def serve(cache_dir: Path, address: str, bridge: str, lab_json: Path, log: Path) -> tuple[int, int]:
    """Start the HTTP server for CACHE_DIR on ADDRESS (a free port), detached from this
    process; returns (pid, port). It exits by itself when BRIDGE or LAB_JSON is gone."""
    with open(log, "ab") as err:
        proc = subprocess.Popen(
            [sys.executable, "-I", str(SERVER), str(cache_dir), address, "0", bridge,
             str(lab_json)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err,
            start_new_session=True, cwd="/",
        )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline().decode().split()
    proc.stdout.close()
    if len(line) != 2 or line[0] != "listening":
        proc.kill()
        proc.wait()
        raise OperationFailed(f"lab cache: the cache server did not start (see {log})")
    return proc.pid, int(line[1])


def is_server(pid: int) -> bool:
    return processes.pid_runs(pid, str(SERVER).encode())


def nix_conf(url: str | None, public_key: str | None) -> str:
    """A lab host's /etc/nix/nix.conf: the lab cache as its only substituter, trusted by
    its public key; without a cache, no substituter (the lab is offline: the default,
    https://cache.nixos.org/, would only cost each substitution attempt DNS retries)."""
    lines = ["# written by hydradeploy lab (lab/cache.py)\n"]
    lines.append(f"substituters = {url or ''}\n".replace(" \n", "\n"))
    if public_key:
        lines.append(f"trusted-public-keys = {public_key}\n")
    lines.append("require-sigs = true\n")  # Nix's default, said out loud
    return "".join(lines)
