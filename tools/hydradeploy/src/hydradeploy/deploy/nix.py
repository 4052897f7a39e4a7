"""Each Nix command the engine runs, as one small function returning its argv.

Local commands run through `transport.local` (argv, no shell); remote ones are joined with
`shlex.join` by `transport.Connection.run`. Tests assert these exact argvs.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from hydradeploy.deploy.models import SYSTEM_PROFILE, Generation

NEW_CLI = ["--extra-experimental-features", "nix-command flakes"]
# A store path: 32 characters of Nix's base-32 alphabet (no e, o, t, u), a dash, a name.
# upstream: NixOS/nix src/libutil/hash.cc @2.8.0 (`base32Chars =
# "0123456789abcdfghijklmnpqrsvwxyz"`); names: src/libstore/path.cc @2.8.0 `checkName`
# (not empty, at most 211 characters of [0-9a-zA-Z+-._?=]); current Nix also refuses "."
# and ".." as the first dash-separated component (2.35.2 src/libstore/path.cc
# `checkName`, `StorePath::MaxPathLen = 211` in include/nix/store/path.hh).
STORE_PATH_RE = re.compile(
    r"^/nix/store/[0-9a-df-np-sv-z]{32}-(?!\.\.?(?:-|$))[A-Za-z0-9+._?=-]{1,211}$"
)


def is_store_path(path: str) -> bool:
    return bool(STORE_PATH_RE.match(path))


def set_profile(path: str, profile: str = SYSTEM_PROFILE) -> list[str]:
    """A new generation `PROFILE-N-link` → `path` (N = the highest number + 1; none when the
    newest generation already is `path`), and `PROFILE` → it.
    upstream: NixOS/nix src/nix-env/nix-env.cc @2.8.0 (`--set`, `opSet`) and
    src/libstore/profiles.cc @2.8.0 (`createGeneration`, `makeName`: "%1%-%2%" + "-link";
    2.35.2: `fmt("%s-%s-link", profile, num)`)."""
    return ["nix-env", "-p", profile, "--set", path]


def switch_generation(number: int, profile: str = SYSTEM_PROFILE) -> list[str]:
    # upstream: NixOS/nix src/nix-env/nix-env.cc @2.8.0 (`--switch-generation` / `-G`).
    return ["nix-env", "-p", profile, "--switch-generation", str(number)]


def list_generations(profile: str = SYSTEM_PROFILE) -> list[str]:
    # upstream: NixOS/nix src/nix-env/nix-env.cc @2.8.0 (`opListGenerations`).
    return ["nix-env", "-p", profile, "--list-generations"]


def query_requisites(path: str) -> list[str]:
    """The closure of `path`, references before referrers (the order import needs).
    upstream: NixOS/nix src/nix-store/nix-store.cc @2.8.0 (`opQuery`, qRequisites:
    `topoSortPaths` printed from `rbegin()`, i.e. references first; the same in 2.35.2)."""
    return ["nix-store", "--query", "--requisites", path]


def query_size(paths: Sequence[str]) -> list[str]:
    # upstream: NixOS/nix src/nix-store/nix-store.cc @2.8.0 (`opQuery`, qSize: one
    # `info->narSize` line per path, in argument order).
    return ["nix-store", "--query", "--size", *paths]


def print_invalid() -> list[str]:
    """Run remotely with the candidate paths on stdin, one per line: prints the ones the
    store lacks (upstream: NixOS/nix src/nix-store/nix-store.cc @2.8.0,
    `opCheckValidity` with `--print-invalid`: prints each invalid path instead of failing)."""
    return ["xargs", "-r", "nix-store", "--check-validity", "--print-invalid"]


def copy_to(store_uri: str, path: str, *, substitute: bool) -> list[str]:
    """Send `path`'s closure to the store at `store_uri` (`ssh://ALIAS`), run here.

    `--substitute-on-destination`: before sending, the destination tries its own
    substituters for the paths it lacks (NixOS/nix 2.8.0 src/libstore/store-api.cc,
    `copyPaths`: `dstStore.queryValidPaths(storePaths, substitute)`); `Store::
    substitutePaths` only warns when a substitution fails, so what the caches lack is
    sent. Current Nix: the same (2.36.0 src/nix/copy.md: "The `-s` flag causes the
    remote machine to try to substitute missing store paths").

    Why `ssh://` and not `ssh-ng://`: in Nix 2.8 only the legacy SSH store passes the
    flag on (src/libstore/legacy-ssh-store.cc, `queryValidPaths`: `<< cmdQueryValidPaths
    << false // lock << maybeSubstitute`; the host's `nix-store --serve`, src/nix-store/
    nix-store.cc `cmdQueryValidPaths`, then calls `store->substitutePaths(paths)`).
    2.8's ssh-ng store ignores it and sends the local `builders-use-substitutes` setting
    instead (src/libstore/remote-store.cc `RemoteStore::queryValidPaths`: `conn->to <<
    (settings.buildersUseSubstitutes ? 1 : 0)`), so a lab deploy substituted nothing;
    current Nix (2.36.0) passes it for both (src/libstore/worker-protocol-connection.cc
    and serve-protocol-connection.cc, `queryValidPaths`: `to << maybeSubstitute`).
    Measured here (Nix 2.8, a 100–200 MiB payload), the two are equally fast.
    `--no-check-sigs`: our own unsigned builds are accepted as `nix-store --import`
    accepted them (the host's `nix-store --serve` adds with `NoCheckSigs` anyway,
    nix-store.cc `cmdAddToStoreNar`); it counts only for a root or trusted remote end
    (see transport/openssh.store_uri).
    `--log-format internal-json`: one `@nix {…}` line per event; each path sent starts
    an activity of type actCopyPath = 100 whose first field is the path (2.8.0
    src/libutil/logging.hh `ActivityType`; store-api.cc `copyPaths`)."""
    argv = ["nix", *NEW_CLI, "copy", "--log-format", "internal-json", "--no-check-sigs"]
    if substitute:
        argv.append("--substitute-on-destination")
    return [*argv, "--to", store_uri, path]


def realise_dry_run() -> list[str]:
    """Run remotely with store paths on stdin: which of them the host's substituters
    would fetch (`nix-store --realise --dry-run` prints "these N paths will be fetched"
    then the paths indented by two spaces; NixOS/nix 2.8.0 src/libmain/shared.cc,
    `printMissing`; the same lines in current Nix)."""
    return ["xargs", "-r", "nix-store", "--realise", "--dry-run"]


def fetched_paths(text: str) -> set[str]:
    """The paths listed under "… will be fetched …" in `realise_dry_run`'s output."""
    out: set[str] = set()
    inside = False
    for line in text.splitlines():
        if not line.startswith("  "):
            inside = "will be fetched" in line
        elif inside and is_store_path(line.strip()):
            out.add(line.strip())
    return out


def build_toplevel(flake: str, host: str) -> list[str]:
    """`--build-on local`: build the host's system closure in the local store."""
    attr = f"{flake}#nixosConfigurations.{host}.config.system.build.toplevel"
    return ["nix", *NEW_CLI, "build", "--no-link", "--json", attr]


def flake_archive_to(flake: str, store_uri: str) -> list[str]:
    """`--build-on target`, step 1: the flake source and its inputs into the target store."""
    return ["nix", *NEW_CLI, "flake", "archive", "--json", "--to", store_uri, flake]


def remote_build_toplevel(source: str, host: str) -> list[str]:
    """`--build-on target`, step 2: run on the target against the archived source."""
    attr = f"{source}#nixosConfigurations.{host}.config.system.build.toplevel"
    return ["nix", *NEW_CLI, "build", "--no-link", "--json", attr]


def built_path(json_text: str) -> str | None:
    """The toplevel's store path from `nix build --json` (works on every Nix ≥ 2.4,
    unlike --print-out-paths): `[{"drvPath": …, "outputs": {"out": PATH}}]`
    (upstream: NixOS/nix src/nix/build.cc and src/libstore/derived-path.cc @2.8.0,
    `BuiltPath::Built::toJSON`)."""
    import json

    try:
        out = json.loads(json_text)[0]["outputs"]["out"]
    except (ValueError, LookupError, TypeError):
        return None
    return out if isinstance(out, str) and is_store_path(out) else None


_GEN_RE = re.compile(r"^\s*(\d+)\s+(\S+\s+\S+)\s*(\(current\))?\s*$")


def parse_generations(text: str) -> list[Generation]:
    """Parse `nix-env --list-generations` output ("   3   2026-11-21 05:01:02   (current)";
    upstream: NixOS/nix src/nix-env/nix-env.cc @2.8.0 `opListGenerations`, format
    "%|4|   %|4|-%|02|-%|02| %|02|:%|02|:%|02|   %||", local time; 2.35.2 the same)."""
    gens: list[Generation] = []
    for line in text.splitlines():
        m = _GEN_RE.match(line)
        if m:
            gens.append(Generation(int(m.group(1)), m.group(2), bool(m.group(3))))
    return gens


_NAME_RE = re.compile(r"^/nix/store/[0-9a-z]{32}-(.+)$")
# Nix 2.8.0 src/nix/diff-closures.cc getClosureInfo: an output name is stripped first
# (ambiguous with version suffixes like "unstable", as upstream says)
_OUTPUT_RE = re.compile(r"(.*)-([a-z]+|lib32|lib64)")


def split_name(path: str) -> tuple[str, str]:
    """(name, version) as `nix store diff-closures` groups a store path: output name
    stripped, then DrvName's split at the first dash *not* followed by a letter
    (Nix 2.8.0 src/libstore/names.cc `DrvName::DrvName`).
    "/nix/store/…-openssl-3.0.13-bin" -> ("openssl", "3.0.13"); no version -> ("x", "")."""
    m = _NAME_RE.match(path)
    name = m.group(1) if m else path
    out = _OUTPUT_RE.fullmatch(name)
    if out:
        name = out.group(1)
    for i, ch in enumerate(name[:-1]):
        if ch == "-" and not name[i + 1].isalpha():
            return name[:i], name[i + 1 :]
    return name, ""


def _show_versions(versions: set[str]) -> str:
    # Nix 2.8.0 diff-closures.cc showVersions: ∅ for none, ε for an empty version
    if not versions:
        return "∅"
    return ", ".join(sorted(v or "ε" for v in versions))


def closure_changes(old_paths: Sequence[str], new_paths: Sequence[str]) -> list[str]:
    """`nix store diff-closures`'s lines (Nix 2.8.0 src/nix/diff-closures.cc
    printClosureDiff), computed from two path lists so it works when the closures sit in
    different stores: `name: 1.0 → 1.1`, `name: ∅ → 1.2`, `name: 0.9 → ∅`. Upstream shows
    a package whose versions did not change only when its size moved by 8 KiB or more;
    sizes are not known here, so such a package is shown when its store paths differ,
    as `name: 1.0 (rebuilt)` (changed inputs or options)."""

    def by_name(paths: Sequence[str]) -> dict[str, dict[str, set[str]]]:
        out: dict[str, dict[str, set[str]]] = {}
        for p in paths:
            name, version = split_name(p)
            out.setdefault(name, {}).setdefault(version, set()).add(p)
        return out

    old, new = by_name(old_paths), by_name(new_paths)
    lines: list[str] = []
    for name in sorted(set(old) | set(new)):
        before, after = old.get(name, {}), new.get(name, {})
        removed = {v for v in before if v not in after}
        added = {v for v in after if v not in before}
        if removed or added:
            lines.append(f"{name}: {_show_versions(removed)} → {_show_versions(added)}")
        elif before != after:
            lines.append(f"{name}: {_show_versions(set(after))} (rebuilt)")
    return lines
