"""The `hydradeploy` command line.

Sub-commands live in their own packages and are imported only when they are run, so
`hydradeploy --help` stays fast. A command whose package is not installed is not listed.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

import click

from hydradeploy import __version__
from hydradeploy.errors import EXIT_USAGE, OperationFailed, UserError

# command name -> (module, attribute, one-line help shown by --help without importing it)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "convert": ("hydradeploy.convert.cli", "convert", "Convert containers to k3s manifests."),
    "inventory": ("hydradeploy.inventory_cli", "inventory", "Validate and show the inventory."),
    "plan": ("hydradeploy.deploy.cli", "plan", "Show what a deploy would do, in order."),
    "deploy": ("hydradeploy.deploy.cli", "deploy", "Deploy NixOS generations in cluster order."),
    "rollback": ("hydradeploy.deploy.cli", "rollback", "Roll a host back to a generation."),
    "generations": ("hydradeploy.deploy.cli", "generations", "List a host's system generations."),
    "status": ("hydradeploy.deploy.cli", "status", "Generation, k3s and node state per host."),
    "check": ("hydradeploy.deploy.cli", "check", "Run the join and health checks only."),
    "history": ("hydradeploy.deploy.cli", "history", "Past deploys, rollbacks and reboots."),
    "reboot": ("hydradeploy.deploy.reboot_cli", "reboot", "Reboot hosts: cordon, drain, check."),
    "prune": ("hydradeploy.deploy.prune_cli", "prune", "Delete objects of removed manifests."),
    "nodes": ("hydradeploy.deploy.nodes_cli", "nodes", "Sync node labels and taints."),
    "secrets": ("hydradeploy.secrets.cli", "secrets", "Manage age-encrypted secrets."),
    "lab": ("hydradeploy.lab.cli", "lab", "Local lab of test hosts for rehearsing deploys."),
}


def repo_root() -> Path:
    """The hydra repository this tool works on: $HYDRA_ROOT, else the nearest parent
    of the working directory holding hosts/inventory.toml, else the working directory."""
    env = os.environ.get("HYDRA_ROOT")
    if env:
        return Path(env)
    here = Path.cwd()
    for candidate in (here, *here.parents):
        if (candidate / "hosts" / "inventory.toml").is_file():
            return candidate
    return here


def default_inventory() -> Path:
    return repo_root() / "hosts" / "inventory.toml"


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        names = []
        for name, (module, _attr, _help) in COMMANDS.items():
            try:
                found = importlib.util.find_spec(module) is not None
            except ModuleNotFoundError:
                found = False
            if found:
                names.append(name)
        return names

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module, attr, _help = entry
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name and module.startswith(exc.name):
                return None
            raise
        command: click.Command = getattr(mod, attr)
        return command

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # global options written after the command (`status --inventory X`) are the
        # group's: also while the shell completes a word, which parses here without main()
        return super().parse_args(ctx, hoist_globals(args))

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--inventory",
    "inventory_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Inventory file (default: hosts/inventory.toml of the repository).",
)
@click.option(
    "--verbose", "-v", is_flag=True, help="Details of failures (SSH handshakes, commands)."
)
@click.option("--quiet", "-q", is_flag=True, help="No progress or summaries on stderr.")
@click.version_option(__version__, prog_name="hydradeploy")
@click.pass_context
def cli(ctx: click.Context, inventory_path: Path | None, verbose: bool, quiet: bool) -> None:
    """hydra: convert containers to k3s manifests and deploy NixOS generations
    across the cluster, checking that every node rejoined k3s.

    Global options (--inventory, -v, -q) go before or after the command.
    Shell completion of commands, host names and @tags (zsh, fish: docs/deploy.md):

    \b
      eval "$(_HYDRADEPLOY_COMPLETE=bash_source hydradeploy)"

    \b
    Example:
      hydradeploy --inventory hosts/inventory.toml status --on @gpu
    """
    ctx.ensure_object(dict)
    ctx.obj["inventory_path"] = inventory_path or default_inventory()
    ctx.obj["inventory_explicit"] = inventory_path is not None
    ctx.obj["verbose"] = verbose
    ctx.obj["quiet"] = quiet
    if verbose:
        from hydradeploy.transport.ssh import set_verbose

        set_verbose(True)


GLOBAL_FLAGS = {"-v", "--verbose", "-q", "--quiet"}
GLOBAL_VALUED = {"--inventory"}


def _command_params(args: list[str]) -> set[str]:
    """Option names the (sub)command named in args accepts itself."""
    ctx = click.Context(cli)
    cmd: click.Command = cli
    for word in args:
        if word.startswith("-"):
            continue
        if not isinstance(cmd, click.Group):
            break
        sub = cmd.get_command(ctx, word)
        if sub is None:
            break
        cmd = sub
    return {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)}


def hoist_globals(argv: list[str]) -> list[str]:
    """Move global options written after the command to the front, unless that command
    has an option of the same name (`lab up --inventory`), and never past `--`."""
    end = argv.index("--") if "--" in argv else len(argv)
    head, tail = argv[:end], argv[end:]
    first, i = None, 0
    while i < len(head):
        if head[i] in GLOBAL_VALUED:
            i += 2
            continue
        if not head[i].startswith("-"):
            first = i
            break
        i += 1
    if first is None:
        return argv
    # tokens before the command are the group's own; look after it
    own = _command_params(head[first:])
    front: list[str] = []
    rest: list[str] = head[:first]
    i = first
    while i < len(head):
        a = head[i]
        name = a.split("=", 1)[0]
        if name in own:
            rest.append(a)
        elif a in GLOBAL_FLAGS:
            front.append(a)
        elif name in GLOBAL_VALUED:
            if "=" in a:
                front.append(a)
            elif i + 1 < len(head):
                front += [a, head[i + 1]]
                i += 1
            else:
                rest.append(a)
        else:
            rest.append(a)
        i += 1
    return front + rest + tail


def usage_line(exc: click.UsageError) -> str:
    """click's usage error as the one line every other user error is: the command,
    what is wrong, and where the help is."""
    where = exc.ctx.command_path if exc.ctx is not None else "hydradeploy"
    what = " ".join(exc.format_message().split()).rstrip(".")
    return f"hydradeploy: error: {where}: {what} (see '{where} --help')"


def main(argv: list[str] | None = None) -> Any:
    """Entry point: user errors become one line on stderr and exit status 2."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        args = hoist_globals(args)
        return cli.main(args=args, prog_name="hydradeploy", standalone_mode=False)
    except UserError as exc:
        click.echo(f"hydradeploy: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except OperationFailed as exc:
        if str(exc):
            click.echo(f"hydradeploy: {exc}", err=True)
        sys.exit(exc.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("hydradeploy: aborted", err=True)
        sys.exit(130)
    except click.UsageError as exc:
        # a group called without its command: its help is the answer (click >= 8.2
        # raises NoArgsIsHelpError for `no_args_is_help`)
        if isinstance(exc, getattr(click.exceptions, "NoArgsIsHelpError", ())):
            exc.show()
            sys.exit(EXIT_USAGE)
        click.echo(usage_line(exc), err=True)
        sys.exit(EXIT_USAGE)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_USAGE if exc.exit_code != 0 else 0)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except BrokenPipeError:
        sys.exit(0)
