"""Resource limits: memory sizes, CPU counts, and the host-relative defaults.

A workspace gets half of the host by default (the reference's rule): memory is half the host's
RAM counted in whole GiB (at least 2g), CPUs are half the host's cores (at least 1). Memory plus
swap equals memory, so a workspace never swaps. Docker wants bytes and nano-CPUs; the user writes
``4g`` and ``1.5``, so this module converts both ways.
"""

from __future__ import annotations

import math
import os
import re

from containai.fsm._errors import ConfigError

GIB = 1 << 30
#: Docker refuses a memory limit below 6 MiB.
MIN_MEMORY = 6 << 20
#: Docker's smallest CPU quota is 0.01 CPU.
MIN_CPUS = 0.01
SIZE_FORMS = "a whole number of bytes or a number with a unit k, m, g or t (e.g. 4g, 512m, 1.5g)"

_SIZE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(value: str | int, *, what: str = "memory limit") -> int:
    """Parse a size such as ``4g``, ``512m``, ``2048k``, ``1.5g`` or ``1073741824`` into bytes.

    Units are binary (``1g`` is 2**30 bytes) and case-insensitive; a trailing ``b``/``ib`` is
    allowed (``4GiB``). Fractions are rounded down to a whole byte.

    Raises:
        ConfigError: the value is not a positive size.
    """
    if isinstance(value, bool):
        raise ConfigError(f"invalid {what} {value!r}: expected {SIZE_FORMS}")
    if isinstance(value, int):
        n = value
    else:
        match = _SIZE.match(value)
        if match is None:
            raise ConfigError(f"invalid {what} {value!r}: expected {SIZE_FORMS}")
        number, unit = match.groups()
        n = math.floor(float(number) * _UNITS[unit.lower()])
    if n < 1:
        raise ConfigError(f"invalid {what} {value!r}: expected {SIZE_FORMS}")
    return n


def parse_memory(value: str | int, *, what: str = "memory limit") -> int:
    """:func:`parse_size` for a container memory limit: at least Docker's 6 MiB minimum.

    Raises:
        ConfigError: not a size, or too small.
    """
    n = parse_size(value, what=what)
    if n < MIN_MEMORY:
        raise ConfigError(f"invalid {what} {value!r}: must be at least 6m (Docker's minimum)")
    return n


def format_size(n: int) -> str:
    """The shortest exact spelling of ``n`` bytes: ``4g``, ``1536m``, ``123``."""
    for unit in ("t", "g", "m", "k"):
        scale = _UNITS[unit]
        if n >= scale and n % scale == 0:
            return f"{n // scale}{unit}"
    return str(n)


def parse_cpus(value: float | str, *, what: str = "CPU limit") -> float:
    """Parse a CPU count such as ``2``, ``1.5`` or ``"0.5"``.

    Raises:
        ConfigError: the value is not a positive number of at least 0.01.
    """
    if isinstance(value, bool):
        raise ConfigError(f"invalid {what} {value!r}: expected a number of CPUs such as 2 or 1.5")
    try:
        cpus = float(value)
    except ValueError:
        raise ConfigError(
            f"invalid {what} {value!r}: expected a number of CPUs such as 2 or 1.5"
        ) from None
    if not math.isfinite(cpus) or cpus < MIN_CPUS:
        raise ConfigError(f"invalid {what} {value!r}: must be at least {MIN_CPUS}")
    return cpus


def nano_cpus(cpus: float) -> int:
    """Docker's ``NanoCpus`` for a CPU count."""
    return round(cpus * 1_000_000_000)


def format_cpus(cpus: float) -> str:
    """``2`` rather than ``2.0``; ``1.5`` stays ``1.5``."""
    return f"{cpus:g}"


def host_memory() -> int:
    """Total RAM of this host in bytes (``/proc/meminfo``, then sysconf, then 8 GiB)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 8 * GIB


def host_cpus() -> int:
    """CPUs this process may use (affinity, like ``nproc``), falling back to 2."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 2


def default_memory(total: int | None = None) -> int:
    """Half the host's RAM in whole GiB, at least 2 GiB (``total`` defaults to this host)."""
    total = host_memory() if total is None else total
    return max(2, (total // GIB) // 2) * GIB


def default_cpus(count: int | None = None) -> int:
    """Half the host's CPUs, at least 1 (``count`` defaults to this host)."""
    count = host_cpus() if count is None else count
    return max(1, count // 2)
