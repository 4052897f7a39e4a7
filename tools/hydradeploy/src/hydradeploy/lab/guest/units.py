"""Which units an activation stops, starts or restarts: the rules of NixOS's
switch-to-configuration, cut down to what lab closures carry (services only).

Followed: nixpkgs pkgs/by-name/sw/switch-to-configuration-ng/src/src/main.rs (commit
00401fd7e581), `parse_systemd_ini` (the [Install] section is skipped; an empty value
clears earlier ones) and `compare_units` (units are compared parsed, not byte by byte;
a difference only in ignored [Unit] keys such as Description, Documentation or
X-Reload-Triggers does not restart), and nixos/doc/manual/development/
unit-handling.section.md: a unit no longer in the new system is stopped; a changed
unit is restarted; a new unit that is wanted is started.
"""

from __future__ import annotations

from pathlib import Path

UnitInfo = dict[str, dict[str, list[str]]]

# compare_units' unit_section_ignores (main.rs, same commit).
UNIT_SECTION_IGNORES = frozenset({
    "X-Reload-Triggers", "Description", "Documentation", "OnFailure", "OnSuccess",
    "OnFailureJobMode", "IgnoreOnIsolate", "StopWhenUnneeded", "RefuseManualStart",
    "RefuseManualStop", "AllowIsolate", "CollectMode", "SourcePath",
})  # fmt: skip


def parse(text: str) -> UnitInfo:
    data: UnitInfo = {}
    section: str | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        if section is None or section == "Install" or "=" not in line:
            continue
        key, _, value = line.partition("=")
        values = data.setdefault(section, {}).setdefault(key.strip(), [])
        if value.strip():
            values.append(value.strip())
        else:
            values.clear()
    return data


def parse_file(path: Path) -> UnitInfo | None:
    try:
        return parse(path.read_text())
    except OSError:
        return None


def equal(current: UnitInfo, new: UnitInfo) -> bool:
    """True when switching from CURRENT to NEW needs no restart."""
    for section in set(current) | set(new):
        old_keys, new_keys = current.get(section, {}), new.get(section, {})
        for key in set(old_keys) | set(new_keys):
            if section == "Unit" and key in UNIT_SECTION_IGNORES:
                continue
            if old_keys.get(key) != new_keys.get(key):
                return False
    return True
