"""User templates: ``~/.config/containai/templates/NAME/Dockerfile`` built FROM a cai image.

The image of a template is tagged with the hash of the template directory's content, so a
changed template is a new image (built on first use) and never a silently reused stale one. A
workspace container records the template and hash it was created from in its labels, so
``cai up`` can tell when a workspace runs an older build than the template now describes.
"""

from __future__ import annotations

import hashlib
import io
import re
import tarfile
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from containai import __version__
from containai._defaults import LABEL_TEMPLATE, LABEL_TEMPLATE_HASH, config_home, image_ref
from containai.fsm._errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable

    from containai.orchestrator._images import ImagePort

DEFAULT = "default"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


class Template(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    directory: str
    digest: str  # sha256 of the directory's files, names and modes

    @property
    def ref(self) -> str:
        return f"containai-template/{self.name}:{self.digest[:12]}"

    @property
    def labels(self) -> dict[str, str]:
        return {LABEL_TEMPLATE: self.name, LABEL_TEMPLATE_HASH: self.digest}


def templates_dir() -> Path:
    return config_home() / "templates"


def load_template(name: str) -> Template:
    """Find template ``name`` and hash its content.

    Raises:
        ConfigError: a bad name, or no Dockerfile for it (the message says where to put one).
    """
    if not _NAME.match(name):
        raise ConfigError(f"template name {name!r}: use lowercase letters, digits, '.', '_', '-'")
    directory = templates_dir() / name
    dockerfile = directory / "Dockerfile"
    if not dockerfile.is_file():
        raise ConfigError(
            f"template {name!r} not found: create {dockerfile} starting with "
            f"`ARG BASE_IMAGE={image_ref('base')}` and `FROM ${{BASE_IMAGE}}`"
        )
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file() and not p.is_symlink()):
        rel = path.relative_to(directory).as_posix()
        digest.update(f"{rel}\0{path.stat().st_mode & 0o777:o}\0".encode())
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return Template(name=name, directory=str(directory), digest=digest.hexdigest())


def context_tar(template: Template) -> bytes:
    """The template directory as an uncompressed build context (symlinks left out)."""
    buffer = io.BytesIO()
    root = Path(template.directory)
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path in sorted(root.rglob("*")):
            if path.is_symlink():
                continue
            tar.add(path, arcname=path.relative_to(root).as_posix(), recursive=False)
    return buffer.getvalue()


async def ensure_template_image(
    images: ImagePort, template: Template, *, on_line: Callable[[str], object] = lambda _: None
) -> str:
    """The image for ``template``, built (FROM the cai base image) unless it already exists."""
    if await images.image_exists(template.ref):
        return template.ref
    base = image_ref("base")
    await images.build(
        context_tar(template),
        tag=template.ref,
        buildargs={"BASE_IMAGE": base},
        labels={**template.labels, "containai.version": __version__},
        nocache=False,
        on_line=on_line,
    )
    return template.ref
