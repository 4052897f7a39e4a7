"""The named checks: each is a function (Tree) -> list[Problem], registered by name."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from hydradeploy.manifests.problem import Problem
from hydradeploy.manifests.tree import Tree

Check = Callable[[Tree], list[Problem]]
CHECKS: dict[str, Check] = {}


def check(name: str) -> Callable[[Check], Check]:
    """Register a check under `name` (the name `--check NAME` and Problem.check use)."""

    def register(fn: Check) -> Check:
        CHECKS[name] = fn
        return fn

    return register


def run_all(
    t: Tree, only: Iterable[str] | None = None, checks: Mapping[str, Check] | None = None
) -> list[Problem]:
    """Run the named checks (all registered ones by default) in registration order.
    `checks` lets a caller add its own (the tests add the schema check)."""
    table = CHECKS if checks is None else checks
    names = list(only) if only is not None else list(table)
    return [p for name in names for p in table[name](t)]
