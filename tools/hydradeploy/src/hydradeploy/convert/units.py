"""Docker sizes (`512m`, `2g`, `1.5GiB`), CPU counts and durations (`1m30s`) in
Kubernetes terms (quantities `512Mi`, `2Gi`, `1500m`; whole seconds).

Sizes: compose-go v2 types/bytes.go (e70e961) parses byte values with docker/go-units
v0.5.0 (its go.mod) RAMInBytes, size.go parseSize; podman's `--memory`, `--shm-size`
document the same binary units (containers/podman docs/source/markdown/options/memory.md,
c6580b4a). Durations: compose-go schema/schema.go durationFormatChecker (e70e961) checks
them with Go's time.ParseDuration, as podman does for `--health-*`
(pkg/specgenutil/specgen.go MakeHealthCheckFromCli, c6580b4a); the compose spec lists
us, ms, s, m, h (compose-spec 11-extension.md "Specifying durations", 170098ba)."""

from __future__ import annotations

import math
import re

# parseSize: a number (strconv.ParseFloat), at most one space, then nothing, `b`, or one of
# k m g t p alone or followed by `b` or `ib`, any case; binaryMap: every prefix is a power
# of 1024 (`1MB` is 1 MiB); the result is truncated to whole bytes (int64(size))
_SIZE = re.compile(r"(\d+\.?\d*|\.\d+) ?(b|[kmgtp](?:b|ib)?)?\Z", re.IGNORECASE)
_BINARY = {"": "", "b": "", "k": "Ki", "m": "Mi", "g": "Gi", "t": "Ti", "p": "Pi"}
# Go time.ParseDuration and unitMap (golang/go src/time/format.go, commit 08d24035):
# `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+`, units ns, us, µs (U+00B5), μs (U+03BC), ms, s, m,
# h; a bare "0" is the only number without a unit ("missing unit in duration")
_DURATION = re.compile(r"(\d+\.?\d*|\.\d+)(h|ms|m|s|us|\u00b5s|\u03bcs|ns)")
_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "\u00b5s": 1e-6}
_SECONDS |= {"\u03bcs": 1e-6, "ns": 1e-9}


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
    number, unit = m.group(1), (m.group(2) or "")[:1].lower()
    if "." not in number:
        return f"{int(number)}{_BINARY[unit]}"
    order = "kmgtp".find(unit) + 1 if unit != "b" else 0  # 0 for bytes
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
    """Go duration → whole seconds, rounded up, at least 1 (probes need >= 1); a zero
    duration is 0, which the engines read as "the default" (moby daemon/health.go
    timeoutWithDefault, commit 02483258), and so do the callers.

    Compose wants a string (the schema's `"type": "string"` for interval, timeout,
    start_period, start_interval and stop_grace_period) and ParseDuration refuses a
    number without a unit ("missing unit in duration"), so `30` is refused, not guessed."""
    if isinstance(text, bool) or not isinstance(text, str):
        raise UnitError(f"duration {text!r} is not a string like 30s, 1m30s or 500ms")
    s = text.strip().removeprefix("+")
    if s == "0":
        return 0
    if s.replace(".", "", 1).isdigit():
        raise UnitError(f"duration {text!r} has no unit (write {s}s for seconds)")
    pos, total = 0, 0.0
    for m in _DURATION.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _SECONDS[m.group(2)]
        pos = m.end()
    if pos != len(s) or not s:
        raise UnitError(f"duration {text!r} is not like 30s, 1m30s or 500ms")
    return 0 if total == 0 else max(1, math.ceil(total))


def whole_seconds(text: str | int) -> int:
    """A count of seconds, as `--stop-timeout` takes it (podman docs/source/markdown/
    options/stop-timeout.md, c6580b4a: `--stop-timeout=*seconds*`, default 10)."""
    if isinstance(text, bool) or not str(text).strip().isdigit():
        raise UnitError(f"{text!r} is not a whole number of seconds")
    return int(str(text).strip())
