"""Docker sizes (`512m`, `2g`, `1.5GiB`), CPU counts and durations (`1m30s`) in
Kubernetes terms (quantities `512Mi`, `2Gi`, `1500m`; whole seconds)."""

from __future__ import annotations

import math
import re

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(?:i?b)?\s*\Z", re.IGNORECASE)
_BINARY = {"": "", "k": "Ki", "m": "Mi", "g": "Gi", "t": "Ti", "p": "Pi"}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s|us|ns)")
_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}


class UnitError(ValueError):
    pass


def size_quantity(text: str | int) -> str:
    """Docker byte sizes are binary (m = MiB); keep the unit so the manifest reads like
    the source, converting fractions down to the next unit."""
    if isinstance(text, int) and not isinstance(text, bool):
        if text < 0:
            raise UnitError(f"size {text} is negative")
        return str(text)
    if not isinstance(text, str):
        raise UnitError(f"size {text!r} is not a string or number")
    m = _SIZE.match(text)
    if not m:
        raise UnitError(f"size {text!r} is not a number with an optional unit (b, k, m, g, t)")
    number, unit = m.group(1), m.group(2).lower()
    if "." not in number:
        return f"{int(number)}{_BINARY[unit]}"
    order = "kmgtp".find(unit) + 1  # 0 for bytes
    value = float(number) * 1024**order
    for step in range(order, -1, -1):
        scaled = value / 1024**step
        if scaled == int(scaled):
            return f"{int(scaled)}{_BINARY['' if step == 0 else 'kmgtp'[step - 1]]}"
    return str(int(value))


def cpu_quantity(text: str | int | float) -> str:
    """`1.5` CPUs → `1500m`; whole numbers stay whole."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise UnitError(f"CPU count {text!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise UnitError(f"CPU count {text!r} must be positive")
    millis = round(value * 1000)
    if millis == 0:
        raise UnitError(f"CPU count {text!r} is below 1m")
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"


def duration_seconds(text: str | int | float) -> int:
    """Go-style duration → whole seconds, rounded up, at least 1 (probes need >= 1)."""
    if isinstance(text, bool):
        raise UnitError(f"duration {text!r} is not a duration")
    if isinstance(text, int | float):
        return max(1, math.ceil(text))
    if not isinstance(text, str):
        raise UnitError(f"duration {text!r} is not a duration")
    s = text.strip()
    if s.isdigit():  # bare numbers: seconds
        return max(1, int(s))
    pos, total = 0, 0.0
    for m in _DURATION.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _SECONDS[m.group(2)]
        pos = m.end()
    if pos != len(s) or not s:
        raise UnitError(f"duration {text!r} is not like 30s, 1m30s or 500ms")
    return max(1, math.ceil(total))
