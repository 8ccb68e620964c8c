"""Sizes, CPU counts and the half-of-the-host defaults (CONTAINAI.md §3.11)."""

from __future__ import annotations

import pytest

from containai.fsm._errors import ConfigError
from containai.model import (
    default_cpus,
    default_memory,
    format_cpus,
    format_size,
    nano_cpus,
    parse_cpus,
    parse_memory,
    parse_size,
)

GIB = 1 << 30
MIB = 1 << 20


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4g", 4 * GIB),
        ("4G", 4 * GIB),
        ("4gb", 4 * GIB),
        ("4GiB", 4 * GIB),
        ("512m", 512 * MIB),
        ("2048k", 2 * MIB),
        ("1.5g", 3 * GIB // 2),
        ("1t", 1 << 40),
        ("1073741824", GIB),
        (" 8g ", 8 * GIB),
        (GIB, GIB),
    ],
)
def test_parse_size_accepts_docker_forms(text: str | int, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "g", "4x", "-1g", "1.2.3g", "four", "4 gigs", "0", "0.1b"])
def test_parse_size_rejects_invalid_values_naming_them(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_size(text)
    assert repr(text) in str(info.value)


def test_parse_size_error_lists_the_accepted_forms() -> None:
    with pytest.raises(ConfigError, match=r"4g, 512m, 1\.5g"):
        parse_size("lots")


def test_parse_memory_enforces_dockers_minimum() -> None:
    assert parse_memory("6m") == 6 * MIB
    with pytest.raises(ConfigError, match="at least 6m"):
        parse_memory("2048k")


def test_parse_size_rejects_a_bool() -> None:
    with pytest.raises(ConfigError):
        parse_size(True)


@pytest.mark.parametrize(
    ("n", "text"), [(4 * GIB, "4g"), (1536 * MIB, "1536m"), (1 << 40, "1t"), (123, "123")]
)
def test_format_size_round_trips(n: int, text: str) -> None:
    assert format_size(n) == text
    if n >= 6 * MIB:
        assert parse_size(text) == n


@pytest.mark.parametrize(("value", "expected"), [(2, 2.0), (1.5, 1.5), ("0.5", 0.5), ("3", 3.0)])
def test_parse_cpus(value: float | str, expected: float) -> None:
    assert parse_cpus(value) == expected


@pytest.mark.parametrize("value", [0, -1, "abc", "nan", "inf", 0.001, True])
def test_parse_cpus_rejects(value: float | str) -> None:
    with pytest.raises(ConfigError, match="CPU"):
        parse_cpus(value)


def test_nano_cpus_is_dockers_unit() -> None:
    assert nano_cpus(1.5) == 1_500_000_000
    assert nano_cpus(2) == 2_000_000_000
    assert nano_cpus(0.01) == 10_000_000


def test_format_cpus_drops_a_needless_fraction() -> None:
    assert format_cpus(2.0) == "2"
    assert format_cpus(1.5) == "1.5"


@pytest.mark.parametrize(
    ("total", "expected_gib"),
    [
        (23 * GIB + 500 * MIB, 11),  # the reference's example box: 23 GB -> 11g
        (16 * GIB, 8),
        (5 * GIB, 2),
        (3 * GIB, 2),  # at least 2g
        (512 * MIB, 2),
    ],
)
def test_default_memory_is_half_the_host_in_whole_gib(total: int, expected_gib: int) -> None:
    assert default_memory(total) == expected_gib * GIB


@pytest.mark.parametrize(("count", "expected"), [(1, 1), (2, 1), (3, 1), (8, 4), (64, 32)])
def test_default_cpus_is_half_the_host_at_least_one(count: int, expected: int) -> None:
    assert default_cpus(count) == expected


def test_defaults_for_this_host_are_sane() -> None:
    assert default_memory() >= 2 * GIB
    assert default_memory() % GIB == 0
    assert default_cpus() >= 1
