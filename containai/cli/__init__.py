"""The ``cai`` command line: a thin typer/rich shell over the orchestrator."""

from __future__ import annotations

from collections.abc import Sequence

from containai.fsm._errors import CaiError

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``cai`` with ``argv`` (default: ``sys.argv[1:]``) and return the exit code.

    A :class:`~containai.fsm.CaiError` is printed as ``TypeName: message`` on stderr and
    mapped to its exit code; any other exception keeps its traceback.
    """
    import click

    from containai.cli._app import build_app, report_error

    command = __import__("typer").main.get_command(build_app())
    try:
        result = command.main(
            args=list(argv) if argv is not None else None,
            prog_name="cai",
            standalone_mode=False,
        )
    except CaiError as exc:
        return report_error(exc)
    except BaseExceptionGroup as group:  # raised out of a task group
        matched, rest = group.split(CaiError)
        if matched is None or rest is not None:
            raise
        return report_error(_first_leaf(matched))
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.exceptions.Abort:
        print("Aborted.")
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    return result if isinstance(result, int) else 0


def _first_leaf(group: BaseExceptionGroup[CaiError]) -> CaiError:
    first = group.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first
