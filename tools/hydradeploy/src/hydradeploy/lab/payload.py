"""Payload for lab closures: N MiB of incompressible data in many store paths that the
closure's toplevel references, so a lab closure looks like a NixOS one to a copy (many
paths, a few large, most small) and can be substituted from a binary cache.

`nix-store --add` (how plain lab closures are made) records no references, so a closure
with payload is built as real derivations with `nix-build`: one per payload path, and the
toplevel, which copies the lab's closure tree and links every payload path under
`payload/`. Nix finds the references by scanning the output for the hashes of its inputs
(Nix 2.8 `src/libstore/build/local-derivation-goal.cc`, `registerOutputs`:
`scanForReferences`), as for every NixOS toplevel. The paths are input-addressed, like
NixOS's: a binary cache must sign them (Nix 2.8 `src/libstore/store-api.cc`
`ValidPathInfo::checkSignatures` lets only content-addressed paths through unsigned).

The builder is the runner's `/usr/bin/python3` (no nixpkgs here), so the builds run
outside the sandbox (`--option sandbox false`) and without build users
(`--option build-users-group ''`; the runner has no `nixbld` group; Nix 2.8
`src/libstore/globals.cc` makes it the default for root).

Determinism: a payload path's content is SHAKE-256 of (seed, index, block) — FIPS 202,
the same bytes on every machine — and its store path depends only on (seed, index,
size). The seed defaults to the host name: two builds for the same host and the same
`--payload-mib` share their payload (a rebuild that changes only configuration, as
usually happens); two hosts share it when given the same seed; a new seed gives new
paths (e.g. a cold copy for a benchmark).
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from pathlib import Path

from hydradeploy.errors import OperationFailed, UserError

MIB = 1 << 20
MAX_PATHS = 40  # a NixOS closure has hundreds; 40 keeps a lab build quick
MIN_PATH_BYTES = 4096
MAX_MIB = 16384
BUILDER = "/usr/bin/python3"  # the runner's Python (Debian's), the payload's builder
SEED_RE = re.compile(r"^[A-Za-z0-9._+-]{1,64}$")
PAYLOAD_DIR = "payload"  # toplevel/payload/NN -> /nix/store/…-hydra-lab-payload-NN
PAYLOAD_NAME = "hydra-lab-payload-"

# Builders (run by Nix with `python3 -I -B -c SCRIPT`; env holds the derivation's attrs).
GENERATE = """
import hashlib, os
out, seed, index, size = os.environ["out"], os.environ["seed"], os.environ["index"], int(os.environ["size"])
os.makedirs(out + "/share/hydra-lab-payload")
with open(out + "/share/hydra-lab-payload/data.bin", "wb") as f:
    block = 0
    while size > 0:
        n = min(size, 1 << 20)
        f.write(hashlib.shake_256(("%s/%s/%d" % (seed, index, block)).encode()).digest(n))
        size -= n
        block += 1
"""
TOPLEVEL = """
import os, shutil
out = os.environ["out"]
shutil.copytree(os.environ["src"], out, symlinks=True)
os.chmod(out, 0o755)
os.mkdir(out + "/payload")
for path in os.environ["payload"].split():
    os.symlink(path, out + "/payload/" + path.rsplit("-", 1)[1])
"""
EXPR = """
{ src, name, seed, sizes, python, generate, toplevel }:
let
  sizeList = builtins.fromJSON sizes;
  pad = i: if i < 10 then "0${toString i}" else toString i;
  payload = i: derivation {
    name = "hydra-lab-payload-${pad i}";
    system = builtins.currentSystem;
    builder = python;
    args = [ "-I" "-B" "-c" generate ];
    inherit seed;
    index = toString i;
    size = toString (builtins.elemAt sizeList i);
  };
in derivation {
  inherit name;
  system = builtins.currentSystem;
  builder = python;
  args = [ "-I" "-B" "-c" toplevel ];
  src = builtins.storePath src;
  payload = builtins.genList payload (builtins.length sizeList);
}
"""


def check(mib: int, seed: str | None) -> None:
    if not 0 <= mib <= MAX_MIB:
        raise UserError(f"lab closure: --payload-mib {mib} must be between 0 and {MAX_MIB}")
    if seed is not None and not SEED_RE.match(seed):
        raise UserError(
            f"lab closure: --payload-seed {seed!r}: 1–64 of letters, digits and . _ + -"
        )


def sizes(mib: int, seed: str) -> list[int]:
    """Bytes per payload path: min(MAX_PATHS, N) paths summing to exactly N MiB, sized
    by a log-uniform spread over 1–64 units drawn from the seed (a few big paths, many
    small ones, as in a NixOS closure)."""
    total = mib * MIB
    count = min(MAX_PATHS, max(1, mib))
    draw = hashlib.shake_256(f"{seed}/sizes".encode()).digest(2 * count)
    weights = [
        2 ** (6 * int.from_bytes(draw[2 * i : 2 * i + 2], "big") / 65536) for i in range(count)
    ]
    scale = (total - count * MIN_PATH_BYTES) / sum(weights)
    out = [MIN_PATH_BYTES + int(w * scale) for w in weights]
    out[out.index(max(out))] += total - sum(out)
    return out


def build(src: str, name: str, mib: int, seed: str, timeout: float = 1800) -> str:
    """nix-build the toplevel NAME from the closure tree SRC (a store path) plus MIB MiB
    of payload; returns the toplevel's store path."""
    argv = [
        "nix-build", "--no-out-link", "--quiet",
        "--option", "sandbox", "false", "--option", "build-users-group", "",
        "--option", "substituters", "",  # offline: nothing to ask cache.nixos.org
        "--argstr", "src", src, "--argstr", "name", name, "--argstr", "seed", seed,
        "--argstr", "sizes", json.dumps(sizes(mib, seed)), "--argstr", "python", BUILDER,
        "--argstr", "generate", GENERATE, "--argstr", "toplevel", TOPLEVEL,
        "-E", EXPR,
    ]  # fmt: skip
    if not Path(BUILDER).exists():
        raise OperationFailed(f"lab closure: --payload-mib needs {BUILDER} on this machine")
    proc = subprocess.run(argv, capture_output=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip().splitlines()
        raise OperationFailed(
            f"lab closure: nix-build of the payload: {err[-1] if err else 'failed'}"
        )
    return proc.stdout.decode().strip().splitlines()[-1]


def paths_of(toplevel: str) -> list[str]:
    """The payload store paths a lab closure references (empty without payload)."""
    proc = subprocess.run(
        ["nix-store", "--query", "--references", toplevel],
        capture_output=True, timeout=60, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise OperationFailed(f"lab: nix-store --query --references {toplevel}: failed")
    return sorted(p for p in proc.stdout.decode().split() if PAYLOAD_NAME in p)
