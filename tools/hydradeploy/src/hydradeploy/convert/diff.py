"""`--check`: compare what is on disk with what would be written, as data (deepdiff),
so reformatting or comments never count as drift and a real change reads as a path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from deepdiff import DeepDiff

try:
    _Loader: Any = yaml.CSafeLoader
except AttributeError:
    _Loader = yaml.SafeLoader


def _load(path: Path) -> list[Any] | str:
    try:
        return [
            d
            for d in yaml.load_all(path.read_text(encoding="utf-8"), Loader=_Loader)
            if d is not None
        ]
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        return f"unreadable: {exc}".splitlines()[0]


def drift(out: Path, files: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Readable lines describing every difference; empty when the tree is current."""
    lines: list[str] = []
    folders = sorted({p.split("/", 1)[0] for p in files})
    on_disk: set[str] = set()
    for folder in folders:
        base = out / folder
        if base.is_dir():
            on_disk.update(str(p.relative_to(out)) for p in base.rglob("*.yaml"))
    for rel in sorted(set(files) | on_disk):
        path = out / rel
        if rel not in files:
            lines.append(f"- {rel}: on disk but no longer generated (would be removed)")
            continue
        if rel not in on_disk:
            lines.append(f"+ {rel}: missing (would be written)")
            continue
        current = _load(path)
        if isinstance(current, str):
            lines.append(f"~ {rel}: {current}")
            continue
        changes = _compare(current, files[rel])
        if changes:
            lines.append(f"~ {rel}:")
            lines.extend(f"    {line}" for line in changes)
    return lines


def _key(doc: Any, index: int) -> str:
    if isinstance(doc, dict) and isinstance(doc.get("metadata"), dict):
        return f"{doc.get('kind')}/{doc['metadata'].get('name')}"
    return f"document {index + 1}"


def _compare(current: list[Any], wanted: list[dict[str, Any]]) -> list[str]:
    have = {_key(d, i): d for i, d in enumerate(current)}
    want = {_key(d, i): d for i, d in enumerate(wanted)}
    lines: list[str] = []
    for key in sorted(set(have) | set(want)):
        if key not in want:
            lines.append(f"- {key} (would be removed)")
        elif key not in have:
            lines.append(f"+ {key} (would be added)")
        else:
            diff = DeepDiff(have[key], want[key], ignore_order=False, verbose_level=2)
            if diff:
                lines.append(f"{key}:")
                lines.extend(
                    f"  {line.replace('root', key, 1)}" for line in diff.pretty().splitlines()
                )
    if not lines and [_key(d, i) for i, d in enumerate(current)] != list(want):
        lines.append("documents are in a different order")
    return lines
