"""Fixtures of the k8s/ checks (the repository's tree and inventory), imported by the test
modules. Not a conftest.py: a second non-package conftest would replace the root one in
sys.modules and break `from conftest import run_cli` elsewhere."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import pytest
from hydradeploy.inventory import Inventory, load_inventory
from hydradeploy.versions import KUBERNETES_VERSION
from manifest_checks import Doc, Tree, load_documents
from upstream_data import UPSTREAM, chart_defaults

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "k8s"
CONVERTED = K8S / "converted"


@pytest.fixture(name="inventory", scope="session")
def inventory_fixture() -> Inventory:
    return load_inventory(REPO / "hosts" / "inventory.toml")


@pytest.fixture(name="k8s_docs", scope="session")
def k8s_docs_fixture() -> list[Doc]:
    """The hand-written tree: everything under k8s/ except the converter's output."""
    return [d for d in load_documents(K8S) if CONVERTED not in d.path.parents]


def defaults() -> dict:
    """The charts' upstream default values when ../shared/upstream is there (the checks
    then see the values Helm renders); without it, only the values we set."""
    return chart_defaults() if UPSTREAM.is_dir() else {}


@pytest.fixture(name="tree", scope="session")
def tree_fixture(k8s_docs: list[Doc], inventory: Inventory) -> Tree:
    return Tree(k8s_docs, inventory, KUBERNETES_VERSION, defaults())


Mutator = Callable[[list[Doc]], list[Doc]]


@pytest.fixture(name="broken")
def broken_fixture(k8s_docs: list[Doc], inventory: Inventory) -> Callable[..., Tree]:
    """broken(mutate) -> a Tree of a deep copy of the real documents after `mutate`,
    a function that edits the list in place (or returns a new list)."""

    def make(mutate: Mutator, inv: Inventory | None = None) -> Tree:
        docs = [Doc(d.path, d.index, copy.deepcopy(d.obj)) for d in k8s_docs]
        result = mutate(docs)
        # mutators edit in place; those that drop documents return the new list
        if isinstance(result, list) and result and isinstance(result[0], Doc):
            docs = result
        return Tree(docs, inv or inventory, KUBERNETES_VERSION, defaults())

    return make
