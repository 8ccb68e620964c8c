"""The example in docs/embedding.md runs as written against the real engine."""

from __future__ import annotations

import re
from pathlib import Path

import anyio
import pytest

pytestmark = pytest.mark.docker

DOC = Path(__file__).parents[2] / "docs" / "embedding.md"


def test_embedding_example_runs(cai_env, workspaces, monkeypatch, capsys) -> None:
    for key, value in cai_env.items():
        monkeypatch.setenv(key, value)
    code = re.search(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert code is not None
    namespace: dict[str, object] = {"__name__": "embedding_example"}
    exec(compile(code.group(1), str(DOC), "exec"), namespace)
    paths = [str(p) for p in workspaces("doc-a", "doc-b")]
    anyio.run(namespace["main"], paths, backend="asyncio")  # type: ignore[arg-type]
    out = capsys.readouterr().out
    assert out.count("init-done -> sshd-ready") == 2
    assert out.count("sshd-ready -> attached") == 2
    assert out.count("exit 0") == 2
    assert "Statistics(" in out
