"""The lab inventory file: the source inventory's hosts, roles, labels, taints, GPUs
and microVMs with lab addresses, and an [ssh] table with the lab's key, known_hosts
and each host's public host key. Same schema as hosts/inventory.toml."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(k: str) -> str:
    return k if BARE_KEY.match(k) else json.dumps(k)


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(type(v))


def dumps(data: dict[str, Any]) -> str:
    """TOML for an inventory table: top-level tables, one level of named sub-tables."""
    out = ["# hydra lab inventory, written by `hydradeploy lab up`. Addresses are lab-only.\n"]
    for top in ("cluster", "ssh", "storage", "hosts"):
        if top not in data:
            continue
        table = data[top]
        if top in ("storage", "hosts"):
            for name, sub in table.items():
                out.append(f"\n[{top}.{_key(name)}]\n")
                out.extend(f"{_key(k)} = {_value(v)}\n" for k, v in sub.items())
        else:
            out.append(f"\n[{top}]\n")
            out.extend(f"{_key(k)} = {_value(v)}\n" for k, v in table.items())
    return "".join(out)


def write(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(dumps(data))
    os.replace(tmp, path)
