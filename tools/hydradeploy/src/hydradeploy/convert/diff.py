"""`--check`: compare what is on disk with what would be written, as data (deepdiff),
so reformatting or comments never count as drift and a real change reads as a path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from deepdiff import DeepDiff

from hydradeploy.convert import ownership

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


class DriftCheck:
    """Compare generated files one at a time as they are built (`file`), then list the
    files on disk that would be removed (`finish`)."""

    def __init__(self, out: Path, owner: str | None = None) -> None:
        self.out = out
        self.owner = owner  # compare only this source's files (ownership.py)
        self.lines: list[str] = []
        self._seen: set[str] = set()
        self._folders: set[str] = set()

    def own(self, folder: str) -> None:
        self._folders.add(folder)

    def file(self, rel: str, wanted: list[dict[str, Any]]) -> None:
        self._seen.add(rel)
        path = self.out / rel
        if not path.is_file():
            self.lines.append(f"+ {rel}: missing (would be written)")
            return
        if self.owner is not None:
            why = ownership.conflict(rel, ownership.owner(path), self.owner)
            if why:
                self.lines.append(f"! {why}")
                return
        current = _load(path)
        if isinstance(current, str):
            self.lines.append(f"~ {rel}: {current}")
            return
        changes = _compare(current, wanted)
        if changes:
            self.lines.append(f"~ {rel}:")
            self.lines.extend(f"    {line}" for line in changes)

    def finish(self) -> list[str]:
        folders = sorted({p.split("/", 1)[0] for p in self._seen} | self._folders)
        for folder in folders:
            base = self.out / folder
            if base.is_dir():
                for p in sorted(base.rglob("*.yaml")):
                    rel = p.relative_to(self.out).as_posix()
                    if self.owner is not None and ownership.owner(p) != self.owner:
                        continue  # another source's, a shared or a hand-written file
                    if rel not in self._seen:
                        self.lines.append(
                            f"- {rel}: on disk but no longer generated (would be removed)"
                        )
        return self.lines


def drift(out: Path, files: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Readable lines describing every difference; empty when the tree is current."""
    check = DriftCheck(out)
    for rel in sorted(files):
        check.file(rel, files[rel])
    return check.finish()


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
