"""Results for people and for programs, the same way in every command: `--output table`
(a rich table on a terminal; tab-separated lines with a header when piped, never
truncated or wrapped) or `--output json`."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

import click

OUTPUTS = ("table", "json")

output_option = click.option(
    "--output",
    type=click.Choice(OUTPUTS),
    default="table",
    show_default=True,
    help="table for people (tab-separated when piped), json for programs.",
)


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True))


def console(err: bool = False) -> Any:
    from rich.console import Console

    return Console(file=sys.stderr if err else sys.stdout, highlight=False, soft_wrap=False)


def _plain(cell: str) -> str:
    from rich.text import Text

    return Text.from_markup(cell).plain.replace("\t", " ").replace("\n", "; ")


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Print a table: rich on a terminal, TSV (header first, markup stripped) otherwise.
    Cells may carry rich markup ("[red]…[/]")."""
    if not sys.stdout.isatty():
        click.echo("\t".join(columns))
        for row in rows:
            click.echo("\t".join(_plain(c) for c in row))
        return
    from rich.table import Table

    t = Table(title=title, title_justify="left")
    for col in columns:
        t.add_column(col, overflow="fold")
    for row in rows:
        t.add_row(*row)
    console().print(t)
