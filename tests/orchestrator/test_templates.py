"""Templates: content-hashed images, labels, stale-build warnings; --reset makes a new volume."""

from __future__ import annotations

from pathlib import Path

import pytest

from containai._defaults import LABEL_DATA_VOLUME, LABEL_TEMPLATE, LABEL_TEMPLATE_HASH
from containai.fsm._errors import ConfigError
from containai.orchestrator._templates import load_template


class FakeImages:
    def __init__(self) -> None:
        self.built: list[str] = []

    async def image_exists(self, ref: str) -> bool:
        return ref in self.built

    async def build(self, context, *, tag, buildargs, labels, nocache, on_line) -> None:
        assert buildargs["BASE_IMAGE"].startswith("containai/base:")
        self.built.append(tag)


def _write(home: Path, name: str, body: str) -> Path:
    directory = home / ".config" / "containai" / "templates" / name
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "Dockerfile").write_text(body)
    return directory


def test_template_digest_follows_its_content(isolated_home: Path) -> None:
    _write(isolated_home, "ml", "FROM x\nRUN true\n")
    first = load_template("ml")
    assert load_template("ml").digest == first.digest
    _write(isolated_home, "ml", "FROM x\nRUN echo changed\n")
    assert load_template("ml").digest != first.digest
    assert first.ref.startswith("containai-template/ml:")


@pytest.mark.parametrize("name", ["missing", "Bad Name"])
def test_missing_or_badly_named_template_is_a_config_error(isolated_home, name: str) -> None:
    with pytest.raises(ConfigError, match="template"):
        load_template(name)


async def test_up_with_a_template_builds_once_and_labels_the_container(
    orchestrator, make_workspace, fake, isolated_home: Path
) -> None:
    _write(isolated_home, "ml", "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n")
    images = FakeImages()
    ws = make_workspace("app")
    async with orchestrator(images=images) as orch:
        status = await orch.up(ws, template="ml")
        again = await orch.up(ws, template="ml")
    assert len(images.built) == 1
    (container,) = fake.containers.values()
    assert container.spec.image == images.built[0]
    assert container.spec.labels[LABEL_TEMPLATE] == "ml"
    assert container.spec.labels[LABEL_TEMPLATE_HASH] == load_template("ml").digest
    assert status.warnings == ()
    assert again.warnings == ()


async def test_a_changed_template_is_rebuilt_and_the_old_workspace_reported(
    orchestrator, make_workspace, fake, isolated_home: Path
) -> None:
    _write(isolated_home, "ml", "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n")
    images = FakeImages()
    ws = make_workspace("app")
    async with orchestrator(images=images) as orch:
        await orch.up(ws, template="ml")
        _write(isolated_home, "ml", "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN true\n")
        stale = await orch.up(ws, template="ml")
        assert len(images.built) == 2
        assert any("--fresh --template ml" in w for w in stale.warnings)
        fresh = await orch.up(ws, template="ml", fresh=True)
    (container,) = fake.containers.values()
    assert container.spec.image == images.built[1]
    assert fresh.state == "sshd-ready"


async def test_reset_recreates_on_a_new_data_volume(orchestrator, make_workspace, fake) -> None:
    ws = make_workspace("app")
    async with orchestrator() as orch:
        first = await orch.up(ws)
        second = await orch.up(ws, reset=True)
    assert first.name == second.name
    (container,) = fake.containers.values()
    volume = container.spec.labels[LABEL_DATA_VOLUME]
    assert volume.startswith("app-nogit-")
    assert first.data_volume != volume
