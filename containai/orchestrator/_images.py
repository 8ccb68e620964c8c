"""Building the image layers base → sdks → full, with an offline Debian bootstrap.

Theory of operation. Each layer is a Dockerfile in ``images/<layer>/`` built on the previous one
(``ARG BASE_IMAGE``). The build context is made in memory: the layer's Dockerfile plus the
repository's ``units/`` tree (what the base image installs). The base layer starts from
``debian:bookworm`` when the engine has it or can pull it; no registry is reachable on many of
the machines cai runs on, so otherwise (or with ``bootstrap=True``) a root filesystem is made with
``debootstrap`` and imported as :data:`~containai._defaults.BOOTSTRAP_IMAGE`, once: later builds
reuse it. Layers are tagged ``containai/<layer>:<version>`` and ``:latest`` and labelled with the
cai version.

The engine is reached through :class:`ImagePort` (implemented over aiodocker in
``adapters/_docker_build.py``); progress goes to a caller's callback as :data:`ImageProgress`
Structs, so the CLI decides how to show it.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import anyio
import msgspec

import containai
from containai import __version__
from containai._defaults import BOOTSTRAP_IMAGE, IMAGE_LAYERS, IMAGE_REPO, LABEL_VERSION, image_ref
from containai.fsm._errors import ImageError, NeedsRoot, UsageError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Mapping, Sequence

    from anyio.abc import ByteReceiveStream

UPSTREAM_IMAGE = "debian:bookworm"
DEBIAN_SUITE = "bookworm"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
LABEL_LAYER = "containai.layer"
PULL_TIMEOUT = 600.0

_SOURCES_LIST = f"""\
deb {DEBIAN_MIRROR} {DEBIAN_SUITE} main
deb {DEBIAN_MIRROR} {DEBIAN_SUITE}-updates main
deb http://deb.debian.org/debian-security {DEBIAN_SUITE}-security main
"""


# -- progress ---------------------------------------------------------------------------------
class Progress(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind"):
    """Base of the progress messages :func:`build_images` reports."""


class StepStarted(Progress, frozen=True, tag="step-started"):
    step: str  # e.g. "build containai/base:0.1.0"


class StepFinished(Progress, frozen=True, tag="step-finished"):
    step: str
    seconds: float
    detail: str = ""
    ok: bool = True  # False: the step failed and the build went another way


class OutputLine(Progress, frozen=True, tag="output-line"):
    step: str
    line: str


ImageProgress = StepStarted | StepFinished | OutputLine


# -- the port -----------------------------------------------------------------------------------
class ImagePort(Protocol):
    """What building images needs from the engine."""

    async def image_exists(self, ref: str) -> bool: ...

    async def pull(self, ref: str) -> None:
        """Raises :class:`ImageError` when the image cannot be pulled."""

    async def import_rootfs(self, rootfs_tar: Path, ref: str, *, labels: Mapping[str, str]) -> None:
        """Import a root filesystem tarball as a one-layer image tagged ``ref``."""

    async def build(
        self,
        context: bytes,
        *,
        tag: str,
        buildargs: Mapping[str, str],
        labels: Mapping[str, str],
        nocache: bool,
        on_line: Callable[[str], object],
    ) -> None:
        """Build the uncompressed tar ``context``; raises :class:`ImageError` naming the failing
        step on a build failure."""

    async def tag(self, ref: str, new_ref: str) -> None: ...


class BuildResult(msgspec.Struct, frozen=True, kw_only=True):
    refs: tuple[str, ...]  # the version tags built, base first
    base_image: str  # what the base layer was built FROM
    bootstrapped: bool  # the rootfs was made by debootstrap in this run
    seconds: float


# -- where images/ and units/ are ---------------------------------------------------------------
def _asset_roots() -> list[Path]:
    package = Path(containai.__file__).parent
    return [package.parent, package / "_assets"]  # a checkout, then a wheel (force-include)


def asset_dir(name: str) -> Path:
    """``images`` or ``units``: the repository's directory, or the copy shipped in the wheel.

    Raises:
        ImageError: neither exists (a broken install).
    """
    for root in _asset_roots():
        candidate = root / name
        if candidate.is_dir() and any(candidate.iterdir()):
            return candidate
    tried = ", ".join(str(r / name) for r in _asset_roots())
    raise ImageError(f"cannot find cai's {name}/ directory (tried {tried})")


def layers_up_to(layer: str) -> tuple[str, ...]:
    """The layers to build, in order, to get ``layer``."""
    if layer not in IMAGE_LAYERS:
        raise UsageError(f"unknown image layer {layer!r}; choose one of {', '.join(IMAGE_LAYERS)}")
    return IMAGE_LAYERS[: IMAGE_LAYERS.index(layer) + 1]


def build_context(layer: str, *, ca_certs: Sequence[Path] = ()) -> bytes:
    """An uncompressed tar holding ``Dockerfile`` (the layer's), the ``units/`` tree and a
    ``certs/`` directory with ``ca_certs`` (PEM files the base image adds to its trust store).

    Owners and times are normalised so the same sources give the same archive.
    """
    dockerfile = asset_dir("images") / layer / "Dockerfile"
    if not dockerfile.is_file():
        raise ImageError(f"no Dockerfile for layer {layer!r} at {dockerfile}")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:

        def add(path: Path, arcname: str) -> None:
            info = tar.gettarinfo(str(path), arcname=arcname)
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            info.mtime = 0
            if info.isfile():
                with path.open("rb") as fh:
                    tar.addfile(info, fh)
            elif info.isdir():
                tar.addfile(info)

        add(dockerfile, "Dockerfile")
        units = asset_dir("units")
        add(units, "units")
        for path in sorted(units.rglob("*")):
            if "__pycache__" in path.parts or path.is_symlink():
                continue
            add(path, f"units/{path.relative_to(units).as_posix()}")
        certs = tarfile.TarInfo("certs")
        certs.type, certs.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(certs)
        for index, cert in enumerate(ca_certs):
            add(cert, f"certs/{index:02d}-{cert.stem}.crt")
    return buf.getvalue()


# -- the build ------------------------------------------------------------------------------------
async def build_images(
    port: ImagePort,
    *,
    layer: str = "base",
    bootstrap: bool = False,
    nocache: bool = False,
    version: str = __version__,
    ca_certs: Sequence[Path] = (),
    on_progress: Callable[[ImageProgress], object] = lambda p: None,
) -> BuildResult:
    """Build the layers up to ``layer``, in order, through the engine.

    Args:
        port: the engine.
        layer: ``base``, ``sdks`` or ``full``.
        bootstrap: make the base root filesystem with debootstrap even if ``debian:bookworm``
            could be pulled (skipped when :data:`BOOTSTRAP_IMAGE` already exists).
        nocache: build without the engine's layer cache.
        version: the cai version for tags and labels.
        ca_certs: extra CA certificates (PEM) for the base image's trust store, for networks
            whose TLS goes through an intercepting proxy; the upper layers inherit them.
        on_progress: receives each :data:`ImageProgress`.

    Returns:
        The refs built and how the base was obtained.

    Raises:
        ImageError: a build step failed (the message names the layer and the failing line), or
            the base root filesystem could not be made.
        NeedsRoot: debootstrap is needed and this process is not root.

    Cancellation: a cancelled bootstrap removes its temporary root filesystem.
    """
    started = time.monotonic()
    layers = layers_up_to(layer)
    base_image, bootstrapped = await _resolve_base(port, bootstrap=bootstrap, report=on_progress)
    refs: list[str] = []
    parent = base_image
    for name in layers:
        ref = image_ref(name, version)
        step = f"build {ref}"
        on_progress(StepStarted(step=step))
        t0 = time.monotonic()
        context = build_context(name, ca_certs=ca_certs if name == "base" else ())
        labels = {LABEL_VERSION: version, LABEL_LAYER: name}

        def on_line(line: str, step: str = step) -> None:
            on_progress(OutputLine(step=step, line=line))

        await port.build(
            context,
            tag=ref,
            buildargs={"BASE_IMAGE": parent, "CAI_VERSION": version},
            labels=labels,
            nocache=nocache,
            on_line=on_line,
        )
        latest = f"{IMAGE_REPO}/{name}:latest"
        await port.tag(ref, latest)
        on_progress(StepFinished(step=step, seconds=time.monotonic() - t0, detail=f"also {latest}"))
        refs.append(ref)
        parent = ref
    return BuildResult(
        refs=tuple(refs),
        base_image=base_image,
        bootstrapped=bootstrapped,
        seconds=time.monotonic() - started,
    )


async def _resolve_base(
    port: ImagePort, *, bootstrap: bool, report: Callable[[ImageProgress], object]
) -> tuple[str, bool]:
    """The image the base layer builds FROM, and whether this run bootstrapped it.

    Order: a local ``debian:bookworm``; an existing bootstrap image (no network wait); a pull of
    ``debian:bookworm``; a debootstrap. ``bootstrap=True`` goes straight to the bootstrap image
    (made unless it exists).
    """
    if not bootstrap:
        if await port.image_exists(UPSTREAM_IMAGE):
            return UPSTREAM_IMAGE, False
        if await port.image_exists(BOOTSTRAP_IMAGE):
            found = StepFinished(step=f"base {BOOTSTRAP_IMAGE}", seconds=0.0, detail="present")
            report(found)
            return BOOTSTRAP_IMAGE, False
        step = f"pull {UPSTREAM_IMAGE}"
        report(StepStarted(step=step))
        t0 = time.monotonic()
        try:
            with anyio.fail_after(PULL_TIMEOUT):
                await port.pull(UPSTREAM_IMAGE)
        except (ImageError, TimeoutError) as exc:
            reason = str(exc) or "timed out"
            report(
                StepFinished(
                    step=step,
                    seconds=time.monotonic() - t0,
                    detail=f"failed ({reason}); bootstrapping from Debian packages instead",
                    ok=False,
                )
            )
        else:
            report(StepFinished(step=step, seconds=time.monotonic() - t0))
            return UPSTREAM_IMAGE, False
    if await port.image_exists(BOOTSTRAP_IMAGE):
        report(StepFinished(step=f"base {BOOTSTRAP_IMAGE}", seconds=0.0, detail="present"))
        return BOOTSTRAP_IMAGE, False
    await bootstrap_rootfs(port, report=report)
    return BOOTSTRAP_IMAGE, True


# -- debootstrap ----------------------------------------------------------------------------------
def _check_can_bootstrap() -> str:
    if os.geteuid() != 0:
        raise NeedsRoot(
            "making the base image from Debian packages (debootstrap) needs root: "
            "run `sudo cai image build --bootstrap`, or `docker pull debian:bookworm` where a "
            "registry is reachable"
        )
    found = shutil.which("debootstrap")
    if found is None:
        raise ImageError(
            "debootstrap is not installed (apt-get install debootstrap); it makes the base "
            f"image when {UPSTREAM_IMAGE} cannot be pulled"
        )
    return found


async def _run(
    argv: Sequence[str], *, step: str, report: Callable[[ImageProgress], object]
) -> None:
    tail: list[str] = []
    async with await anyio.open_process(
        list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    ) as proc:
        assert proc.stdout is not None
        async for line in _lines(proc.stdout):
            tail = [*tail[-19:], line]
            report(OutputLine(step=step, line=line))
        await proc.wait()
    if proc.returncode != 0:
        last = next((t for t in reversed(tail) if t.strip()), "")
        raise ImageError(f"{step}: {argv[0]} exited {proc.returncode}: {last}")


async def _lines(stream: ByteReceiveStream) -> AsyncIterator[str]:
    pending = b""
    async for chunk in stream:
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for raw in complete:
            yield raw.decode(errors="replace").rstrip("\r")
    if pending:
        yield pending.decode(errors="replace")


def _prepare_rootfs(root: Path) -> None:
    (root / "etc/apt/sources.list").write_text(_SOURCES_LIST)
    for sub in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for path in (root / sub).glob("*"):
            if path.is_file():
                path.unlink()
    (root / "etc/hostname").unlink(missing_ok=True)
    (root / "etc/machine-id").write_text("")


async def bootstrap_rootfs(
    port: ImagePort,
    *,
    ref: str = BOOTSTRAP_IMAGE,
    report: Callable[[ImageProgress], object] = lambda p: None,
) -> None:
    """Make a minimal Debian root filesystem with debootstrap and import it as ``ref``.

    Raises:
        NeedsRoot: not root (debootstrap makes device nodes and chroots).
        ImageError: debootstrap is missing or failed, or the tarball could not be made.
    """
    debootstrap = _check_can_bootstrap()
    workdir = Path(await anyio.to_thread.run_sync(_mkdtemp))
    root = workdir / "rootfs"
    tarball = workdir / "rootfs.tar"
    try:
        step = f"debootstrap {DEBIAN_SUITE} (minbase)"
        report(StepStarted(step=step))
        t0 = time.monotonic()
        argv = [
            debootstrap,
            "--variant=minbase",
            "--include=ca-certificates",
            DEBIAN_SUITE,
            str(root),
            DEBIAN_MIRROR,
        ]
        await _run(argv, step=step, report=report)
        await anyio.to_thread.run_sync(_prepare_rootfs, root)
        report(StepFinished(step=step, seconds=time.monotonic() - t0))

        step = f"import {ref}"
        report(StepStarted(step=step))
        t0 = time.monotonic()
        tar_argv = ["tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-C", str(root)]
        tar_argv += ["--exclude=./dev/*", "--exclude=./proc/*", "--exclude=./sys/*"]
        tar_argv += ["-cf", str(tarball), "."]
        await _run(tar_argv, step=step, report=report)
        labels = {LABEL_VERSION: __version__, LABEL_LAYER: "rootfs"}
        await port.import_rootfs(tarball, ref, labels=labels)
        report(StepFinished(step=step, seconds=time.monotonic() - t0))
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(shutil.rmtree, workdir, True)


def _mkdtemp() -> str:
    base = "/var/tmp" if Path("/var/tmp").is_dir() else None
    return tempfile.mkdtemp(prefix="cai-rootfs-", dir=base)
