"""Manifest documents: every YAML document under a directory, with where it came from."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

# libyaml's loader when present: the pure-Python one takes ~0.3 s for k8s/, paid on
# every conversion (the converter runs these checks too)
LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class Doc:
    """One document. Its identity (kind, group, name, namespace) is read once: every
    check asks for it, of every document (a manifest is not changed once loaded)."""

    path: Path
    index: int  # position of the document in its file, from 0
    obj: dict[str, Any]

    @cached_property
    def kind(self) -> str:
        return str(self.obj.get("kind", ""))

    @cached_property
    def api_version(self) -> str:
        return str(self.obj.get("apiVersion", ""))

    @cached_property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @cached_property
    def name(self) -> str:
        return str((self.obj.get("metadata") or {}).get("name", ""))

    @cached_property
    def namespace(self) -> str:
        return str((self.obj.get("metadata") or {}).get("namespace", ""))

    @property
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


def load_documents(root: Path) -> list[Doc]:
    """Every document of every *.yaml / *.yml under root, in path order."""
    docs: list[Doc] = []
    for path in sorted([*root.rglob("*.yaml"), *root.rglob("*.yml")]):
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
