"""Image builds: layer order and build args, the bootstrap fallback, the build context, the
shipped units; plus, against the real engine, how a failed build step and an import look."""

from __future__ import annotations

import io
import os
import tarfile
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from containai import __version__
from containai._defaults import (
    BOOTSTRAP_IMAGE,
    ENGINE_HOST,
    ENGINE_SOCKET,
    LABEL_VERSION,
    MARKER_INIT_DONE,
    MARKER_SSHD_READY,
    image_ref,
)
from containai.fsm._errors import ImageError, NeedsRoot, UsageError
from containai.orchestrator import _images
from containai.orchestrator._images import (
    UPSTREAM_IMAGE,
    ImageProgress,
    OutputLine,
    StepFinished,
    asset_dir,
    build_context,
    build_images,
    layers_up_to,
)


class FakeImages:
    """An in-memory :class:`ImagePort`: images are names in a set, builds are recorded."""

    def __init__(self, *present: str, pull_ok: bool = False, fail: str | None = None) -> None:
        self.present = set(present)
        self.pull_ok = pull_ok
        self.fail = fail
        self.builds: list[tuple[str, dict[str, str], dict[str, str], bool]] = []
        self.contexts: list[bytes] = []
        self.pulls: list[str] = []
        self.tags: list[tuple[str, str]] = []

    async def image_exists(self, ref: str) -> bool:
        return ref in self.present

    async def pull(self, ref: str) -> None:
        self.pulls.append(ref)
        if not self.pull_ok:
            raise ImageError(f"pull {ref}: no registry")
        self.present.add(ref)

    async def import_rootfs(self, rootfs_tar: Path, ref: str, *, labels: Mapping[str, str]) -> None:
        self.present.add(ref)

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
        assert buildargs["BASE_IMAGE"] in self.present, "a layer is built on a missing image"
        on_line("Step 1/2 : FROM base")
        if tag == self.fail:
            raise ImageError(f"building {tag} failed at 'Step 2/2 : RUN false'")
        self.builds.append((tag, dict(buildargs), dict(labels), nocache))
        self.contexts.append(context)
        self.present.add(tag)

    async def tag(self, ref: str, new_ref: str) -> None:
        assert ref in self.present
        self.tags.append((ref, new_ref))
        self.present.add(new_ref)


@pytest.fixture
def fake_bootstrap(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []

    async def bootstrap(port: FakeImages, **_: object) -> None:
        calls.append(BOOTSTRAP_IMAGE)
        port.present.add(BOOTSTRAP_IMAGE)

    monkeypatch.setattr(_images, "bootstrap_rootfs", bootstrap)
    return calls


class TestBuildImages:
    async def test_build_images_builds_each_layer_on_the_previous(self) -> None:
        port = FakeImages(UPSTREAM_IMAGE)
        result = await build_images(port, layer="full", version="9.9")  # type: ignore[arg-type]
        assert [b[0] for b in port.builds] == [
            "containai/base:9.9",
            "containai/sdks:9.9",
            "containai/full:9.9",
        ]
        assert [b[1]["BASE_IMAGE"] for b in port.builds] == [
            UPSTREAM_IMAGE,
            "containai/base:9.9",
            "containai/sdks:9.9",
        ]
        assert all(b[1]["CAI_VERSION"] == "9.9" for b in port.builds)
        assert all(b[2][LABEL_VERSION] == "9.9" for b in port.builds)
        assert ("containai/base:9.9", "containai/base:latest") in port.tags
        assert result.refs == tuple(b[0] for b in port.builds)
        assert result.base_image == UPSTREAM_IMAGE
        assert not result.bootstrapped
        assert port.pulls == []

    async def test_build_images_default_is_base_only(self) -> None:
        port = FakeImages(UPSTREAM_IMAGE)
        result = await build_images(port)  # type: ignore[arg-type]
        assert result.refs == (image_ref("base"),)

    async def test_build_images_pulls_debian_when_missing(self, fake_bootstrap: list[str]) -> None:
        port = FakeImages(pull_ok=True)
        result = await build_images(port)  # type: ignore[arg-type]
        assert port.pulls == [UPSTREAM_IMAGE]
        assert result.base_image == UPSTREAM_IMAGE
        assert fake_bootstrap == []

    async def test_build_images_bootstraps_when_the_pull_fails(
        self, fake_bootstrap: list[str]
    ) -> None:
        port = FakeImages()
        seen: list[ImageProgress] = []
        result = await build_images(port, on_progress=seen.append)  # type: ignore[arg-type]
        assert fake_bootstrap == [BOOTSTRAP_IMAGE]
        assert result.bootstrapped
        assert result.base_image == BOOTSTRAP_IMAGE
        assert port.builds[0][1]["BASE_IMAGE"] == BOOTSTRAP_IMAGE
        failed = [p for p in seen if isinstance(p, StepFinished) and not p.ok]
        assert len(failed) == 1
        assert "no registry" in failed[0].detail
        assert any(isinstance(p, OutputLine) and "Step 1/2" in p.line for p in seen)

    async def test_build_images_reuses_an_existing_bootstrap_image(
        self, fake_bootstrap: list[str]
    ) -> None:
        port = FakeImages(BOOTSTRAP_IMAGE)
        result = await build_images(port, bootstrap=True)  # type: ignore[arg-type]
        assert fake_bootstrap == []
        assert port.pulls == []
        assert result.base_image == BOOTSTRAP_IMAGE
        assert not result.bootstrapped

    async def test_build_images_bootstrap_flag_skips_the_upstream_image(
        self, fake_bootstrap: list[str]
    ) -> None:
        port = FakeImages(UPSTREAM_IMAGE)
        result = await build_images(port, bootstrap=True)  # type: ignore[arg-type]
        assert fake_bootstrap == [BOOTSTRAP_IMAGE]
        assert result.base_image == BOOTSTRAP_IMAGE

    async def test_build_images_stops_at_the_failing_layer(self) -> None:
        port = FakeImages(UPSTREAM_IMAGE, fail=image_ref("sdks"))
        with pytest.raises(ImageError, match="RUN false"):
            await build_images(port, layer="full")  # type: ignore[arg-type]
        assert [b[0] for b in port.builds] == [image_ref("base")]

    async def test_build_images_passes_no_cache(self) -> None:
        port = FakeImages(UPSTREAM_IMAGE)
        await build_images(port, nocache=True)  # type: ignore[arg-type]
        assert port.builds[0][3] is True

    async def test_build_images_unknown_layer_is_a_usage_error(self) -> None:
        with pytest.raises(UsageError, match="base, sdks, full"):
            await build_images(FakeImages(UPSTREAM_IMAGE), layer="huge")  # type: ignore[arg-type]


class TestBootstrapChecks:
    async def test_bootstrap_needs_root(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(os, "geteuid", lambda: 1000)
        with pytest.raises(NeedsRoot, match="sudo cai image build --bootstrap"):
            await _images.bootstrap_rootfs(FakeImages())  # type: ignore[arg-type]

    async def test_bootstrap_needs_debootstrap(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(os, "geteuid", lambda: 0)
        monkeypatch.setattr(_images.shutil, "which", lambda name: None)
        with pytest.raises(ImageError, match="apt-get install debootstrap"):
            await _images.bootstrap_rootfs(FakeImages())  # type: ignore[arg-type]


class TestContext:
    def test_layers_up_to_lists_layers_in_order(self) -> None:
        assert layers_up_to("base") == ("base",)
        assert layers_up_to("full") == ("base", "sdks", "full")

    def test_asset_dirs_are_found(self) -> None:
        assert (asset_dir("images") / "base" / "Dockerfile").is_file()
        assert (asset_dir("units") / "lib" / "init.sh").is_file()

    @pytest.mark.parametrize("layer", ["base", "sdks", "full"])
    def test_build_context_holds_the_dockerfile_and_units(self, layer: str) -> None:
        with tarfile.open(fileobj=io.BytesIO(build_context(layer))) as tar:
            names = tar.getnames()
            dockerfile = tar.extractfile("Dockerfile")
            assert dockerfile is not None
            assert dockerfile.read() == (asset_dir("images") / layer / "Dockerfile").read_bytes()
            assert {m.uid for m in tar.getmembers()} == {0}
        assert "units/system/containai-init.service" in names
        assert "units/lib/init.sh" in names

    def test_build_context_carries_extra_ca_certs(self, tmp_path: Path) -> None:
        cert = tmp_path / "corp.crt"
        cert.write_text("-----BEGIN CERTIFICATE-----\n")
        with tarfile.open(fileobj=io.BytesIO(build_context("base", ca_certs=[cert]))) as tar:
            assert tar.getmember("certs").isdir()
            assert tar.getmember("certs/00-corp.crt").isfile()
        with tarfile.open(fileobj=io.BytesIO(build_context("base"))) as tar:
            assert [n for n in tar.getnames() if n.startswith("certs")] == ["certs"]

    async def test_build_images_gives_ca_certs_to_the_base_layer_only(self, tmp_path: Path) -> None:
        cert = tmp_path / "corp.crt"
        cert.write_text("pem\n")
        port = FakeImages(UPSTREAM_IMAGE)
        await build_images(port, layer="sdks", ca_certs=[cert])  # type: ignore[arg-type]
        with_certs = []
        for context in port.contexts:
            with tarfile.open(fileobj=io.BytesIO(context)) as tar:
                with_certs.append("certs/00-corp.crt" in tar.getnames())
        assert with_certs == [True, False]

    def test_build_context_is_reproducible(self) -> None:
        assert build_context("base") == build_context("base")


class TestShippedFiles:
    """The files the base image installs keep the promises the orchestrator and tests rely on."""

    def test_marker_units_write_the_marker_constants(self) -> None:
        units = asset_dir("units") / "system"
        assert f'"{MARKER_INIT_DONE}"' in (units / "containai-init-done.service").read_text()
        # the sshd marker is followed by the ed25519 host public key on the same line
        sshd = (units / "containai-sshd-ready.service").read_text()
        key = '$$(cut -d" " -f1,2 /etc/ssh/ssh_host_ed25519_key.pub)'
        assert f'"{MARKER_SSHD_READY} {key}"' in sshd

    def test_sshd_config_is_key_only_with_agent_forwarding(self) -> None:
        text = (asset_dir("units") / "sshd_config.d" / "99-containai.conf").read_text()
        settings = {
            line.split()[0]: line.split(None, 1)[1]
            for line in text.splitlines()
            if line.strip() and not line.startswith("#")
        }
        assert settings["PasswordAuthentication"] == "no"
        assert settings["KbdInteractiveAuthentication"] == "no"
        assert settings["PermitRootLogin"] == "no"
        assert settings["AllowUsers"] == "agent"
        assert settings["PubkeyAuthentication"] == "yes"
        assert settings["AllowAgentForwarding"] == "yes"
        assert "DisableForwarding" not in settings

    def test_base_dockerfile_bakes_no_host_keys_and_boots_systemd(self) -> None:
        text = (asset_dir("images") / "base" / "Dockerfile").read_text()
        assert "rm -f /etc/ssh/ssh_host_*" in text
        assert "STOPSIGNAL SIGRTMIN+3" in text
        assert 'ENTRYPOINT ["/sbin/init"]' in text
        assert "ENV container=docker" in text
        assert "docker.sock" not in text

    def test_upper_layers_take_their_base_as_a_build_arg(self) -> None:
        for layer in ("sdks", "full"):
            lines = (asset_dir("images") / layer / "Dockerfile").read_text().splitlines()
            code = [line for line in lines if line and not line.startswith("#")]
            assert code[0].startswith("ARG BASE_IMAGE")
            assert code[1] == "FROM ${BASE_IMAGE}"


# -- against the real engine --------------------------------------------------------------------
def _need_engine() -> None:
    problem = None
    if not os.path.exists(ENGINE_SOCKET):
        problem = f"the cai engine socket {ENGINE_SOCKET} is missing (run `sudo cai setup`)"
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"CI needs the real engine: {problem}")
        pytest.skip(problem)


@pytest.mark.docker
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
class TestRealEngine:
    async def test_failed_step_names_the_layer_and_line(self, tmp_path: Path) -> None:
        _need_engine()
        from containai.orchestrator.adapters._docker_build import open_image_port

        tag = f"cai-test/broken:{uuid.uuid4().hex[:8]}"
        rootfs = _tiny_rootfs(tmp_path)
        dockerfile = b"FROM cai-test/tiny:1\nLABEL step=one\nRUN /bin/definitely-missing --flag\n"
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            info = tarfile.TarInfo("Dockerfile")
            info.size = len(dockerfile)
            tar.addfile(info, io.BytesIO(dockerfile))
        async with open_image_port(ENGINE_HOST) as port:
            await port.import_rootfs(rootfs, "cai-test/tiny:1", labels={"containai.test": "1"})
            try:
                assert (await port.image_labels("cai-test/tiny:1"))["containai.test"] == "1"
                with pytest.raises(ImageError) as info_:
                    await port.build(
                        buf.getvalue(),
                        tag=tag,
                        buildargs={},
                        labels={"containai.test": "1"},
                        nocache=True,
                        on_line=lambda line: None,
                    )
                message = str(info_.value)
                assert tag in message
                assert "RUN /bin/definitely-missing --flag" in message
            finally:
                await port._docker.images.delete("cai-test/tiny:1", force=True)


def _tiny_rootfs(tmp_path: Path) -> Path:
    """A root filesystem tarball with one file (no shell, so any RUN fails)."""
    path = tmp_path / "rootfs.tar"
    with tarfile.open(path, "w") as tar:
        data = f"cai test {__version__}\n".encode()
        info = tarfile.TarInfo("etc/cai-test")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return path
