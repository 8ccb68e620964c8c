"""Small formatting helpers shared by the commands (durations, sizes, NDJSON)."""

from __future__ import annotations

import sys

import msgspec

_encoder = msgspec.json.Encoder()


def ndjson(obj: object) -> None:
    """Write one JSON line to stdout and flush (consumers read line by line)."""
    sys.stdout.write(_encoder.encode(obj).decode() + "\n")
    sys.stdout.flush()


def duration(seconds: float) -> str:
    """``0.4s``, ``12s``, ``3m05s``, ``2h04m``, ``3d02h``."""
    if seconds < 10:
        return f"{seconds:.1f}s"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    return f"{s // 86400}d{(s % 86400) // 3600:02d}h"


def size(n: int) -> str:
    if not n:
        return "-"
    for unit, scale in (("g", 1 << 30), ("m", 1 << 20), ("k", 1 << 10)):
        if n >= scale:
            value = n / scale
            return f"{value:.0f}{unit}" if value == int(value) else f"{value:.1f}{unit}"
    return str(n)


def cpus(nano: int) -> str:
    if not nano:
        return "-"
    value = nano / 1e9
    return f"{value:g}"
