"""Every command's `--help` teaches by example, and every example works.

Walks the whole click tree (the lazy root included), so a command added later without
an example, or an option without help text, fails here with its name.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from cli_runner import REPO
from hydradeploy.cli import cli, hoist_globals
from hydradeploy.inventory import load_inventory

# an example is an indented line of the help that starts with the program's name
# (click keeps a `\b` block's lines as written; a line ending in `\` continues)
EXAMPLE_LINE = re.compile(r"^\s+hydradeploy(\s|$)")
SHELL_OPERATORS = {"&&", "||", "|", ";"}
REDIRECTIONS = {"<", ">", ">>", "2>"}


def walk(cmd: click.Command, path: tuple[str, ...], ctx: click.Context) -> Iterator[
    tuple[tuple[str, ...], click.Command, click.Context]
]:  # fmt: skip
    yield path, cmd, ctx
    if isinstance(cmd, click.Group):
        for name in cmd.list_commands(ctx):
            sub = cmd.get_command(ctx, name)
            assert sub is not None, (
                f"{' '.join((*path, name))}: listed but not loadable"
            )
            yield from walk(
                sub, (*path, name), click.Context(sub, parent=ctx, info_name=name)
            )


ROOT_CTX = click.Context(cli, info_name="hydradeploy")
TREE = list(walk(cli, ("hydradeploy",), ROOT_CTX))
LEAVES = [(p, c, x) for p, c, x in TREE if not isinstance(c, click.Group)]


def _id(path: tuple[str, ...]) -> str:
    return " ".join(path[1:]) or "hydradeploy"


def help_text(cmd: click.Command, ctx: click.Context) -> str:
    ctx.max_content_width = ctx.terminal_width = 100
    return cmd.get_help(ctx)


def example_lines(help_: str) -> list[str]:
    lines, out = help_.splitlines(), []
    i = 0
    while i < len(lines):
        if EXAMPLE_LINE.match(lines[i]):
            line = lines[i].strip()
            while line.endswith("\\") and i + 1 < len(lines):
                i += 1
                line = line[:-1] + " " + lines[i].strip()
            out.append(line)
        i += 1
    return out


def invocations(line: str) -> list[list[str]]:
    """The hydradeploy argv(s) of one example line: shell operators split it,
    redirections (`< token.txt`) are the shell's, not the command's, and a command
    substitution (`$(nix-store -q … | grep x)`) stands for one word."""
    lex = shlex.shlex(line, posix=True, punctuation_chars=True)
    lex.whitespace_split = True
    argvs: list[list[str]] = [[]]
    words = list(lex)
    i = 0
    while i < len(words):
        w = words[i]
        if w.endswith("$") and i + 1 < len(words) and words[i + 1] == "(":
            depth, i = 1, i + 2
            while i < len(words) and depth:
                depth += {"(": 1, ")": -1}.get(words[i], 0)
                i += 1
            argvs[-1].append(w[:-1] + "SUBSTITUTED")
            continue
        if w in SHELL_OPERATORS:
            argvs.append([])
        elif w in REDIRECTIONS:
            i += 1  # and its file
        else:
            argvs[-1].append(w)
        i += 1
    return [a[1:] for a in argvs if a and a[0] == "hydradeploy"]


def parse(argv: list[str]) -> tuple[tuple[str, ...], click.Context]:
    """Parse argv as `hydradeploy` would (global options hoisted), down to the leaf,
    without running anything; a usage error raises click.UsageError."""
    ctx = cli.make_context(
        "hydradeploy", hoist_globals(list(argv)), resilient_parsing=False
    )
    path: tuple[str, ...] = ("hydradeploy",)
    cmd: click.Command = cli
    while isinstance(cmd, click.Group):
        # the sub-command's words: click >= 8.2 keeps them in _protected_args and
        # deprecates the public name (click/core.py Group.invoke, read at 8.5.1)
        protected = getattr(ctx, "_protected_args", None)
        if protected is None:  # click 8.1
            protected = ctx.protected_args
        rest = [*protected, *ctx.args]
        if not rest:
            raise click.UsageError(f"{_id(path)}: no command given", ctx)
        name, sub, rest = cmd.resolve_command(ctx, rest)
        assert name is not None and sub is not None
        path, cmd = (*path, name), sub
        ctx = sub.make_context(name, rest, parent=ctx, resilient_parsing=False)
    return path, ctx


def _inventory() -> tuple[set[str], set[str]]:
    """Host names and tags (the inventory's and the built-in ones) of the example
    inventory, read the way the commands read it."""
    inv = load_inventory(REPO / "hosts" / "inventory.toml")
    return set(inv.hosts), {t for h in inv.hosts.values() for t in h.all_tags()}


@pytest.mark.parametrize(("path", "cmd", "ctx"), TREE, ids=[_id(p) for p, _, _ in TREE])
def test_every_option_has_help_text(path, cmd, ctx) -> None:
    bare = [
        "/".join(p.opts)
        for p in cmd.params
        if isinstance(p, click.Option) and not p.hidden and not (p.help or "").strip()
    ]
    assert not bare, f"{_id(path)}: options without help text: {', '.join(bare)}"


@pytest.mark.parametrize(
    ("path", "cmd", "ctx"), LEAVES, ids=[_id(p) for p, _, _ in LEAVES]
)
def test_every_command_help_has_an_example_of_itself(path, cmd, ctx) -> None:
    examples = example_lines(help_text(cmd, ctx))
    mine = [
        line
        for line in examples
        for argv in invocations(line)
        if tuple(a for a in argv if not a.startswith("-"))[: len(path) - 1] == path[1:]
        or _parses_to(argv) == path
    ]
    assert mine, (
        f"{_id(path)} --help has no example: add a `\\b` block with an indented "
        f"`{' '.join(path)} …` line to its docstring or epilog"
    )


def _parses_to(argv: list[str]) -> tuple[str, ...] | None:
    try:
        return parse(argv)[0]
    except click.ClickException:
        return None


def problems(line: str) -> list[str]:
    """What is wrong with one example line: it does not parse (unknown option or
    command, wrong choice, missing or extra argument), or it names a host or tag that
    hosts/inventory.toml does not have. Paths resolve from the working directory."""
    names, tags = _inventory()
    found = []
    for argv in invocations(line):
        try:
            leaf, parsed = parse(argv)
        except click.ClickException as exc:
            found.append(f"does not parse: {exc.format_message()}")
            continue
        params = parsed.params
        used = [*_as_list(params.get("hosts")), *_as_list(params.get("host"))]
        if leaf[1] == "lab":  # HOST:ROLE[:GPUS]
            used = [u.split(":", 1)[0] for u in used]
        selectors = [
            s for group in _as_list(params.get("on")) for s in group.split(",")
        ]
        for item in [*used, *selectors]:
            if item.startswith("@") and item[1:] not in tags:
                found.append(f"unknown tag {item}")
            elif not item.startswith("@") and item not in names:
                found.append(f"{item} is not a host of hosts/inventory.toml")
    return found


@pytest.mark.parametrize(("path", "cmd", "ctx"), TREE, ids=[_id(p) for p, _, _ in TREE])
def test_every_example_works(path, cmd, ctx, monkeypatch) -> None:
    """Each example parses as hydradeploy would parse it and names hosts and tags of
    the example inventory; paths resolve from the repository root, where a user runs
    them."""
    monkeypatch.chdir(REPO)
    bad = {line: problems(line) for line in example_lines(help_text(cmd, ctx))}
    bad = {line: p for line, p in bad.items() if p}
    assert not bad, f"{_id(path)} --help: " + "; ".join(
        f"`{line}`: {', '.join(p)}" for line, p in bad.items()
    )


def _as_list(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]  # type: ignore[attr-defined]


# ----------------------------------------------------------------- the test's own parts


def test_the_example_parser_finds_continued_lines_and_shell_operators() -> None:
    help_ = (
        "Usage: x\n\n  Examples:\n    hydradeploy deploy --all --mode boot && "
        "hydradeploy reboot --all\n    hydradeploy secrets init --token-stdin < t.txt\n"
        "    hydradeploy convert compose-to-k8s a.yml \\\n        --host hydra-ai\n"
        "    hydradeploy lab cache --dir d $(nix-store -q --references $P | grep x) q\n"
        "  not hydradeploy status\n"
    )
    lines = example_lines(help_)
    assert [argv for line in lines for argv in invocations(line)] == [
        ["deploy", "--all", "--mode", "boot"],
        ["reboot", "--all"],
        ["secrets", "init", "--token-stdin"],
        ["convert", "compose-to-k8s", "a.yml", "--host", "hydra-ai"],
        ["lab", "cache", "--dir", "d", "SUBSTITUTED", "q"],
    ]


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("hydradeploy deploy hydra-ai --no-such-option", "No such option"),
        ("hydradeploy deploy --all --mode reboot", "'reboot' is not one of"),
        ("hydradeploy generations", "Missing argument"),
        ("hydradeploy lab cut hydra-ai", "Missing option '--dir'"),
        ("hydradeploy frobnicate", "No such command"),
        ("hydradeploy -v", "no command given"),
        ("hydradeploy inventory", "Usage: hydradeploy inventory"),
        ("hydradeploy generations hydra-ai extra", "unexpected extra argument"),
        ("hydradeploy deploy ghost", "ghost is not a host"),
        ("hydradeploy status --on @edge,@nope", "unknown tag @nope"),
        ("hydradeploy lab up --dir /tmp/lab srv:server", "srv is not a host"),
    ],
)
def test_a_broken_example_is_reported(line: str, says: str) -> None:
    found = problems(line)
    assert any(says in p for p in found), found


def test_parse_accepts_global_options_after_the_command() -> None:
    path, ctx = parse(["status", "--on", "@gpu", "--inventory", "hosts/inventory.toml"])
    assert path == ("hydradeploy", "status") and ctx.params["on"] == ("@gpu",)
    assert ctx.find_root().params["inventory_path"] == Path("hosts/inventory.toml")
