"""Manifest documents: every YAML document under a directory, with where it came from."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import yaml

# libyaml's loader when present: the pure-Python one takes ~0.3 s for k8s/, paid on
# every conversion (the converter runs these checks too)
LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
T = TypeVar("T")


class _once(Generic[T]):
    """A property computed on first use and then kept in the instance (functools'
    cached_property takes a lock on every first use before Python 3.12: a third of the
    checks' time at 1,000 converted containers)."""

    def __init__(self, fn: Callable[[Any], T]) -> None:
        self.fn = fn
        self.name = fn.__name__

    def __get__(self, obj: Any, owner: Any = None) -> T:
        value = self.fn(obj)
        obj.__dict__[self.name] = value  # the instance's own value shadows this from now on
        return value


@dataclass(frozen=True)
class Doc:
    """One document. Its identity (kind, group, name, namespace) is read once: every
    check asks for it, of every document."""

    path: Path
    index: int  # position of the document in its file, from 0
    obj: dict[str, Any]

    @_once
    def kind(self) -> str:
        return str(self.obj.get("kind", ""))

    @_once
    def api_version(self) -> str:
        return str(self.obj.get("apiVersion", ""))

    @_once
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @_once
    def name(self) -> str:
        return str((self.obj.get("metadata") or {}).get("name", ""))

    @_once
    def namespace(self) -> str:
        return str((self.obj.get("metadata") or {}).get("namespace", ""))

    @_once
    def spec(self) -> dict[str, Any]:
        spec = self.obj.get("spec")
        return spec if isinstance(spec, dict) else {}

    def labels(self) -> dict[str, str]:
        return dict((self.obj.get("metadata") or {}).get("labels") or {})

    def __str__(self) -> str:
        ns = f"{self.namespace}/" if self.namespace else ""
        return f"{self.path}#{self.index} {self.kind} {ns}{self.name}"


class ManifestError(Exception):
    """A file that is not a list of YAML mappings."""


def manifest_files(root: Path) -> list[Path]:
    """Every *.yaml / *.yml under root, in path order."""
    return sorted([*root.rglob("*.yaml"), *root.rglob("*.yml")])


def load_documents(root: Path, files: list[Path] | None = None) -> list[Doc]:
    """Every document of every manifest file under root (or of `files`, a selection of
    them), in path order."""
    docs: list[Doc] = []
    for path in manifest_files(root) if files is None else files:
        try:
            loaded = list(yaml.load_all(path.read_text(encoding="utf-8"), Loader=LOADER))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise ManifestError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from None
        for i, obj in enumerate(loaded):
            if obj is None:
                continue
            if not isinstance(obj, dict):
                raise ManifestError(f"{path}#{i}: a document must be a mapping")
            docs.append(Doc(path, i, obj))
    return docs
