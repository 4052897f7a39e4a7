"""What the conversion did, per container: JSON for programs (--report FILE) and a
summary on stderr for people. The decisions match docs/converter.md rule by rule."""

from __future__ import annotations

import json
import re
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


TABLE_ROWS = 40  # above this many containers the summary groups them


def natural_key(name: str) -> list[Any]:
    """`app-2` before `app-10`."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _grouped_summary(console: Any, conv: Conversion, verb: str, target: str) -> None:
    """Thousands of containers: counts per workload, then each kind of note once with
    how many containers it concerns and the first few names (natural order); the full
    list is in --report."""
    from rich.table import Table

    table = Table(
        title=f"{verb} {len(conv.containers)} container(s) → {target}", title_justify="left"
    )
    for col in ("workload", "containers", "first"):
        table.add_column(col, justify="right" if col == "containers" else "left")
    by_kind: dict[str, list[str]] = {}
    for r in conv.containers:
        by_kind.setdefault(r.workload, []).append(r.name)
    for kind in sorted(by_kind):
        names = sorted(by_kind[kind], key=natural_key)
        table.add_row(
            kind, str(len(names)), ", ".join(names[:3]) + (", …" if len(names) > 3 else "")
        )
    console.print(table)
    examples: dict[str, str] = {}  # shape -> its first message, verbatim
    for title, kind in (
        ("warnings", "warning"),
        ("changed", "changed"),
        ("lost", "lost"),
        ("to do", "action"),
    ):
        groups: dict[str, list[str]] = {}
        for n in conv.notes:
            if n.kind == kind:
                # per-object findings (cluster-fit) differ only in names and numbers
                shape = re.sub(r"\d+", "N", f"{n.key}: {n.message}")
                examples.setdefault(shape, f"{n.key}: {n.message}")
                groups.setdefault(shape, []).append("")
        for r in conv.containers:
            for n in r.notes:
                if n.kind == kind:
                    examples.setdefault(
                        re.sub(r"\d+", "N", f"{n.key}: {n.message.replace(r.name, 'NAME')}"),
                        f"{n.key}: {n.message}",
                    )
                    # the same rule for many containers reads once: numbers and the
                    # container's own name are what differ between their messages
                    shape = re.sub(r"\d+", "N", f"{n.key}: {n.message.replace(r.name, 'NAME')}")
                    groups.setdefault(shape, []).append(r.name)
        if not groups:
            continue
        console.print(f"[bold]{title}:[/bold]")
        for text in sorted(groups, key=lambda t: (-len(groups[t]), t)):
            names = sorted((n for n in groups[text] if n), key=natural_key)
            who = (
                f"{len(names)} container(s) ({', '.join(names[:3])}{', …' if len(names) > 3 else ''}), e.g. "
                if len(names) > 1
                else f"{names[0]}: "
                if names
                else ""
            )
            more = len(groups[text]) - 1 if not names and len(groups[text]) > 1 else 0
            tail = f" (+{more} more like it)" if more else ""
            console.print(f"  {who}{examples[text]}{tail}", markup=False)
    console.print("the full list, per container: --report FILE", markup=False)


def print_summary(conv: Conversion, verb: str, target: str) -> None:
    """A table per container, then every warning and action in full (stderr); grouped
    when there are more than TABLE_ROWS containers."""
    from rich.console import Console
    from rich.table import Table

    console = Console(stderr=True, highlight=False, soft_wrap=True)
    if not console.is_terminal:
        console.width = 120
    if len(conv.containers) > TABLE_ROWS:
        _grouped_summary(console, conv, verb, target)
        return
    table = Table(
        title=f"{verb} {len(conv.containers)} container(s) → {target}", title_justify="left"
    )
    for col in ("container", "source", "workload", "objects", "changed", "lost", "warnings"):
        # fold, never "…": a long container or source name must survive a CI log
        table.add_column(
            col,
            justify="right" if col in ("objects", "changed", "lost", "warnings") else "left",
            overflow="fold",
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
