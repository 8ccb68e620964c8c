"""The lifecycle journal: every transition appended as one NDJSON line under the XDG state dir,
so ``cai events --since`` can replay what other cai processes saw.

Appends are single ``write()`` calls of whole lines on an ``O_APPEND`` descriptor, so concurrent
writers in several processes never interleave within a line. The file is rotated to ``.1`` past
:data:`MAX_BYTES` (one generation kept).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import msgspec

from containai._defaults import state_home
from containai.fsm._lifecycle import Transition

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

MAX_BYTES = 8 * 1024 * 1024
_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Transition)


def journal_path() -> Path:
    return state_home() / "events.ndjson"


class Journal:
    """Appends transitions to the journal file; reads them back."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or journal_path()

    def append(self, record: Transition) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        line = _encoder.encode(record) + b"\n"
        try:
            if self.path.stat().st_size > MAX_BYTES:
                os.replace(self.path, self.path.with_name(self.path.name + ".1"))
        except FileNotFoundError:
            pass
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    def read(self, *, since: float = 0.0) -> Iterator[Transition]:
        """Records with ``time >= since``, oldest first, duplicates from concurrent writers
        (the same container entering the same state from the same state) dropped."""
        last: dict[str, tuple[str | None, str]] = {}
        for path in (self.path.with_name(self.path.name + ".1"), self.path):
            try:
                lines = path.read_bytes().splitlines()
            except FileNotFoundError:
                continue
            for record in self.decode_lines(b"\n".join(lines)):
                key = (record.from_state, record.to_state)
                if last.get(record.container) == key:
                    continue
                last[record.container] = key
                if record.time >= since:
                    yield record

    @staticmethod
    def decode_lines(data: bytes) -> Iterator[Transition]:
        """Decode whole NDJSON lines; a torn or foreign line is skipped, never fatal."""
        for raw in data.splitlines():
            try:
                yield _decoder.decode(raw)
            except msgspec.DecodeError:
                continue
