"""``cai doctor``'s checks against an in-memory port, plus the real command on the real engine."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import msgspec
import pytest

from containai._defaults import ENGINE_SOCKET, image_ref
from containai.fsm._errors import DockerUnavailable
from containai.orchestrator import _doctor
from containai.orchestrator._doctor import DoctorHost, Report, Status
from containai.orchestrator._ports import ContainerView, EngineInfo
from containai.orchestrator._runtime import REDUCED_ISOLATION_SENTENCE


class _Port:
    """Just what the doctor reads: info, image_exists, list_managed."""

    def __init__(
        self,
        *,
        runtime: str = "runc",
        images: set[str] | None = None,
        ports: list[int] | None = None,
        down: bool = False,
        kernel: str = "6.1.0-18-amd64",
    ) -> None:
        self.runtime = runtime
        self.images = {image_ref("base")} if images is None else images
        self.ports = ports or []
        self.down = down
        self.kernel = kernel

    async def info(self) -> EngineInfo:
        if self.down:
            raise DockerUnavailable("nothing answers at the socket")
        return EngineInfo(
            version="20.10.24",
            default_runtime=self.runtime,
            runtimes=sorted({"runc", self.runtime}),
            cgroup_version=1,
            kernel=self.kernel,
            memory=8 << 30,
            cpus=2,
            data_root="/nonexistent/containai-docker",
        )

    async def image_exists(self, ref: str) -> bool:
        return ref in self.images

    async def list_managed(self) -> list[ContainerView]:
        return [
            ContainerView(
                id=f"c{p}", name=f"ws{p}", labels={}, status="running", image="", ssh_port=p
            )
            for p in self.ports
        ]


def _host(tmp_path: Path, **changes: object) -> DoctorHost:
    host = DoctorHost(
        key=tmp_path / "id_containai",
        sysbox_runc=tmp_path / "sysbox-runc",
        data_root=tmp_path / "data",
        port_range=(2300, 2309),
        proc_net=(tmp_path / "tcp",),
    )
    return msgspec.structs.replace(host, **changes)


def _by_name(report: Report) -> dict[str, _doctor.Check]:
    return {c.name: c for c in report.checks}


def _which(name: str) -> str | None:
    return None if name == "ssh" else f"/usr/bin/{name}"


PROC_NET_TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:08FC 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1
   1: 00000000:08FD 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2
   2: 0100007F:08FE 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 3
   3: 0100007F:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4
"""


class TestDiagnose:
    async def test_diagnose_runc_is_reduced_isolation_said_plainly(self, tmp_path: Path) -> None:
        report = await _doctor.diagnose(_Port(), host=_host(tmp_path), which=_which)
        assert report.runtime == "runc"
        assert report.isolation == "reduced"
        isolation = _by_name(report)["isolation"]
        assert isolation.status == Status.WARN
        assert isolation.detail == REDUCED_ISOLATION_SENTENCE
        assert "Sysbox" in isolation.fix

    async def test_diagnose_sysbox_is_full_isolation(self, tmp_path: Path) -> None:
        report = await _doctor.diagnose(
            _Port(runtime="sysbox-runc"), host=_host(tmp_path), which=_which
        )
        assert report.isolation == "sysbox"
        assert _by_name(report)["isolation"].status == Status.OK
        assert _by_name(report)["runtime"].status == Status.OK

    async def test_diagnose_sysbox_installed_but_not_default_warns(self, tmp_path: Path) -> None:
        host = _host(tmp_path)
        host.sysbox_runc.write_text("")
        report = await _doctor.diagnose(_Port(), host=host, which=_which)
        runtime = _by_name(report)["runtime"]
        assert runtime.status == Status.WARN
        assert runtime.fix == "sudo cai setup"

    async def test_diagnose_engine_down_fails_and_names_the_fix(self, tmp_path: Path) -> None:
        report = await _doctor.diagnose(_Port(down=True), host=_host(tmp_path), which=_which)
        assert not report.ok
        engine = _by_name(report)["engine"]
        assert engine.status == Status.FAIL
        assert "sudo cai setup" in engine.fix
        assert report.isolation == "unknown"
        assert report.runtime == "unknown"

    async def test_diagnose_images_base_required_others_optional(self, tmp_path: Path) -> None:
        report = await _doctor.diagnose(_Port(images=set()), host=_host(tmp_path), which=_which)
        checks = _by_name(report)
        assert checks["image-base"].status == Status.FAIL
        assert checks["image-base"].fix == "sudo cai image build --layer base"
        assert checks["image-sdks"].status == Status.WARN
        assert checks["image-full"].status == Status.WARN
        assert not report.ok

    async def test_diagnose_all_ok_with_base_image_and_key(self, tmp_path: Path) -> None:
        host = _host(tmp_path)
        assert host.key is not None
        host.key.write_text("key")
        host.key.chmod(0o600)
        report = await _doctor.diagnose(
            _Port(images={image_ref(layer) for layer in ("base", "sdks", "full")}),
            host=host,
            which=lambda name: f"/usr/bin/{name}",
        )
        fails = [c for c in report.checks if c.status == Status.FAIL]
        assert fails == []
        assert report.ok

    @pytest.mark.parametrize("down", [False, True])
    async def test_diagnose_json_schema_is_stable(self, tmp_path: Path, down: bool) -> None:
        """The same check names in the same order whether or not the engine answers."""
        report = await _doctor.diagnose(_Port(down=down), host=_host(tmp_path), which=_which)
        doc = json.loads(msgspec.json.encode(report))
        assert list(doc) == ["schema", "ok", "isolation", "runtime", "checks"]
        assert doc["schema"] == 1
        for check in doc["checks"]:
            assert list(check) == ["name", "status", "detail", "fix"]
            assert check["status"] in ("OK", "WARN", "FAIL")
        names = [c["name"] for c in doc["checks"]]
        assert names == [
            "engine", "runtime", "isolation", "cgroup", "kernel", "image-base", "image-sdks",
            "image-full", "ssh-client", "ssh-key", "ssh-ports", "disk",
        ]  # fmt: skip


class TestChecks:
    async def test_ssh_client_missing_fails(self) -> None:
        check = await _doctor.ssh_client_check(lambda _: None)
        assert check.status == Status.FAIL
        assert "openssh-client" in check.fix

    def test_key_absent_warns_created_on_first_use(self, tmp_path: Path) -> None:
        check = _doctor.key_check(tmp_path / "id_containai")
        assert check.status == Status.WARN
        assert "created on first use" in check.detail

    @pytest.mark.parametrize(
        ("mode", "status"),
        [(0o600, Status.OK), (0o400, Status.OK), (0o640, Status.FAIL), (0o604, Status.FAIL)],
    )
    def test_key_mode(self, tmp_path: Path, mode: int, status: Status) -> None:
        key = tmp_path / "id_containai"
        key.write_text("k")
        key.chmod(mode)
        check = _doctor.key_check(key)
        assert check.status == status
        if status == Status.FAIL:
            assert check.fix == f"chmod 600 {key}"

    def test_listening_ports_reads_listen_sockets_in_range_only(self, tmp_path: Path) -> None:
        (tmp_path / "tcp").write_text(PROC_NET_TCP)
        # 0x08FC=2300 on 127.0.0.1 and 0x08FD=2301 on 0.0.0.0 listen; 2302 is a connection;
        # port 22 is out of range
        assert _doctor.listening_ports((tmp_path / "tcp",), 2300, 2500) == {2300, 2301}

    async def test_ports_counts_listeners_and_workspaces(self, tmp_path: Path) -> None:
        (tmp_path / "tcp").write_text(PROC_NET_TCP)
        check = await _doctor.ports_check(_Port(ports=[2301, 2305, 9999]), _host(tmp_path))
        assert check.detail == "7 of 10 free in 2300-2309"
        assert check.status == Status.OK

    async def test_ports_exhausted_fails(self, tmp_path: Path) -> None:
        check = await _doctor.ports_check(_Port(ports=list(range(2300, 2310))), _host(tmp_path))
        assert check.status == Status.FAIL
        assert check.detail.startswith("0 of 10 free")

    def test_kernel_old_warns_for_sysbox(self) -> None:
        assert _doctor.kernel_check("5.4.0-150-generic").status == Status.WARN
        assert _doctor.kernel_check("5.15.0").status == Status.OK
        assert _doctor.kernel_check("6.18.44-fc-v782").status == Status.OK

    def test_disk_under_missing_data_root_uses_nearest_parent(self, tmp_path: Path) -> None:
        check = _doctor.disk_check(tmp_path / "not" / "yet")
        assert "GiB free" in check.detail
        assert str(tmp_path / "not" / "yet") in check.detail


def _engine_answers() -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(2)
        try:
            sock.connect(ENGINE_SOCKET)
            sock.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
            return b"200 OK" in sock.recv(256)
        except OSError:
            return False


def require_engine() -> None:
    """Skip outside CI when no engine answers; in CI a missing engine is a failure."""
    if _engine_answers():
        return
    message = f"the cai engine does not answer at {ENGINE_SOCKET} (run `sudo cai setup`)"
    if os.environ.get("CI") or os.environ.get("CAI_REQUIRE_ENGINE"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.mark.docker
def test_doctor_json_on_the_real_engine_reports_runtime_and_isolation(
    capsys: pytest.CaptureFixture[str],
) -> None:
    require_engine()
    from containai.cli import main

    code = main(["doctor", "--json"])
    out = capsys.readouterr().out
    doc = json.loads(out)  # exactly one JSON document
    assert doc["schema"] == 1
    assert code == (0 if doc["ok"] else 1)
    checks = {c["name"]: c for c in doc["checks"]}
    assert checks["engine"]["status"] == "OK"
    if Path("/usr/bin/sysbox-runc").exists():
        assert (doc["runtime"], doc["isolation"]) == ("sysbox-runc", "sysbox")
    else:
        assert (doc["runtime"], doc["isolation"]) == ("runc", "reduced")
        assert checks["isolation"]["detail"] == REDUCED_ISOLATION_SENTENCE
