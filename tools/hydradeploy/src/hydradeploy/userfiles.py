"""Reading a file the user named: any failure is a one-line UserError naming the file."""

from __future__ import annotations

from pathlib import Path

from hydradeploy.errors import UserError


def read_user_text(path: Path, what: str = "file") -> str:
    """The file's text as UTF-8; `what` names it in errors ("inventory file", …)."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: {what} not found") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory, not a {what}") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise UserError(f"{path}: cannot read {what}: {reason}") from None
