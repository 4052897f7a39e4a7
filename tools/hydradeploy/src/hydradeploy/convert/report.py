"""What the conversion did, per container: JSON for programs (--report FILE) and a
summary on stderr for people. The decisions match docs/converter.md rule by rule."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hydradeploy.convert.emit import Conversion
from hydradeploy.convert.model import Note, Source

KINDS = ("converted", "changed", "lost", "warning", "action")


def _notes(notes: list[Note]) -> dict[str, list[dict[str, str]]]:
    out: dict[str, list[dict[str, str]]] = {k: [] for k in KINDS}
    for n in notes:
        out[n.kind].append({"key": n.key, "message": n.message})
    return out


def build_report(
    source: Source, conv: Conversion, out: Path, secrets_dir: Path, secret_files: list[str]
) -> dict[str, Any]:
    totals = {k: sum(1 for r in conv.containers for n in r.notes if n.kind == k) for k in KINDS}
    for n in conv.notes:
        totals[n.kind] += 1
    return {
        "totals": {"containers": len(conv.containers), **totals},
        "source": {
            "kind": source.kind,
            "files": source.files,
            "host": source.host,
            "project": source.project,
        },
        "namespace": conv.namespace,
        "out": str(out),
        "files": conv.paths,
        "secrets_dir": str(secrets_dir),
        "secret_files": sorted(secret_files),
        "notes": _notes(conv.notes),
        "containers": [
            {
                "name": r.name,
                "source": r.source_name,
                "source_file": r.source_file,
                "workload": r.workload,
                "file": r.file,
                "objects": r.objects,
                **_notes(r.notes),
            }
            for r in conv.containers
        ],
    }


def write_report(path: Path, report: dict[str, Any]) -> None:
    from hydradeploy.errors import UserError

    try:
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        raise UserError(f"--report {path}: cannot write: {exc.strerror or exc}") from None


def print_summary(conv: Conversion, verb: str, target: str) -> None:
    """A table per container, then every warning and action in full (stderr)."""
    from rich.console import Console
    from rich.table import Table

    console = Console(stderr=True, highlight=False, soft_wrap=True)
    if not console.is_terminal:
        console.width = 120
    table = Table(
        title=f"{verb} {len(conv.containers)} container(s) → {target}", title_justify="left"
    )
    for col in ("container", "source", "workload", "objects", "changed", "lost", "warnings"):
        table.add_column(
            col, justify="right" if col in ("objects", "changed", "lost", "warnings") else "left"
        )
    for r in conv.containers:
        count = {k: sum(1 for n in r.notes if n.kind == k) for k in KINDS}
        table.add_row(
            r.name,
            r.source_name,
            r.workload,
            str(len(r.objects)),
            str(count["changed"]),
            str(count["lost"]),
            str(count["warning"]),
        )
    console.print(table)
    for title, kind in (
        ("warnings", "warning"),
        ("changed", "changed"),
        ("lost", "lost"),
        ("to do", "action"),
    ):
        items: list[tuple[str | None, Note]] = [(None, n) for n in conv.notes if n.kind == kind]
        items += [(r.name, n) for r in conv.containers for n in r.notes if n.kind == kind]
        if items:
            console.print(f"[bold]{title}:[/bold]")
            for name, n in items:
                who = f"{name}: " if name else ""
                console.print(f"  {who}{n.key}: {n.message}", markup=False)
