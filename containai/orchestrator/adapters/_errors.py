"""Mapping third-party exceptions into cai's error tree at the adapter boundary."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

from containai.fsm._errors import CaiError

ErrorFactory = Callable[[BaseException], CaiError]


@contextmanager
def map_exceptions(mapping: Mapping[type[BaseException], ErrorFactory]) -> Iterator[None]:
    """Re-raise any exception matching a key of ``mapping`` as the ``CaiError`` its factory
    builds, chained with ``from exc`` (httpcore's ``map_exceptions``). Cancellation and
    ``CaiError`` pass through untouched."""
    try:
        yield
    except CaiError:
        raise
    except Exception as exc:
        for exc_type, factory in mapping.items():
            if isinstance(exc, exc_type):
                raise factory(exc) from exc
        raise
