"""Re-export the root conftest's run_cli for modules that import it by name."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "_root_conftest", Path(__file__).parent.parent / "conftest.py"
)
assert _spec is not None and _spec.loader is not None
_root = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_root)
run_cli = _root.run_cli
