"""The runtime policy: which runtime, what HostConfig, and never privileged or the host socket
unless the one explicit case (inner Docker under runc) asks for privileged."""

from __future__ import annotations

import itertools

import pytest

from containai.fsm._errors import ConfigError
from containai.orchestrator._runtime import (
    REDUCED_ISOLATION_SENTENCE,
    choose_runtime,
    host_config,
    host_socket_mounts,
    isolation,
    needs_privileged,
)

RUNTIMES = ("runc", "sysbox-runc")
CGROUPS = (1, 2)


class TestChooseRuntime:
    def test_choose_runtime_auto_prefers_sysbox(self) -> None:
        assert choose_runtime("auto", ["runc", "sysbox-runc"]) == "sysbox-runc"

    def test_choose_runtime_auto_falls_back_to_runc(self) -> None:
        assert choose_runtime("auto", ["io.containerd.runc.v2", "runc"]) == "runc"

    def test_choose_runtime_empty_means_auto(self) -> None:
        assert choose_runtime("", {"sysbox-runc": {}, "runc": {}}) == "sysbox-runc"

    def test_choose_runtime_named_runtime_is_kept(self) -> None:
        assert choose_runtime("runc", ["runc", "sysbox-runc"]) == "runc"

    def test_choose_runtime_missing_named_runtime_is_a_config_error(self) -> None:
        with pytest.raises(ConfigError, match=r"sysbox-runc.*runc"):
            choose_runtime("sysbox-runc", ["runc"])


class TestHostConfig:
    def test_host_config_runc_cgroup_v1_binds_the_cgroup_tree_read_only(self) -> None:
        config = host_config(runtime="runc", cgroup_version=1, inner_docker=False)
        assert config["Binds"] == ["/sys/fs/cgroup:/sys/fs/cgroup:ro"]
        assert set(config["Tmpfs"]) == {"/run", "/run/lock"}  # type: ignore[arg-type]
        assert "Privileged" not in config
        assert "CgroupnsMode" not in config

    def test_host_config_runc_cgroup_v2_uses_a_private_cgroup_namespace(self) -> None:
        config = host_config(runtime="runc", cgroup_version=2, inner_docker=False)
        assert config["CgroupnsMode"] == "private"
        assert "Binds" not in config
        assert "Privileged" not in config

    @pytest.mark.parametrize("cgroup", CGROUPS)
    def test_host_config_sysbox_needs_no_cgroup_handling_nor_privilege(self, cgroup: int) -> None:
        for inner in (False, True):
            config = host_config(runtime="sysbox-runc", cgroup_version=cgroup, inner_docker=inner)
            assert set(config) == {"Tmpfs"}

    @pytest.mark.parametrize("cgroup", CGROUPS)
    def test_host_config_runc_inner_docker_is_the_only_privileged_case(self, cgroup: int) -> None:
        for runtime, cg, inner in itertools.product(RUNTIMES, CGROUPS, (False, True)):
            config = host_config(runtime=runtime, cgroup_version=cg, inner_docker=inner)
            expected = runtime == "runc" and inner
            assert bool(config.get("Privileged")) is expected
            assert needs_privileged(runtime=runtime, inner_docker=inner) is expected
        config = host_config(runtime="runc", cgroup_version=cgroup, inner_docker=True)
        assert "Binds" not in config  # a nested dockerd needs the writable cgroup tree

    def test_host_config_never_mounts_a_docker_socket(self) -> None:
        for runtime, cg, inner in itertools.product(RUNTIMES, CGROUPS, (False, True)):
            config = host_config(runtime=runtime, cgroup_version=cg, inner_docker=inner)
            binds = config.get("Binds", [])
            assert host_socket_mounts(binds) == []  # type: ignore[arg-type]

    def test_host_config_returns_a_fresh_dict(self) -> None:
        first = host_config(runtime="runc", cgroup_version=1, inner_docker=False)
        first["Tmpfs"]["/x"] = ""  # type: ignore[index]
        first["Binds"].append("/a:/b")  # type: ignore[attr-defined]
        second = host_config(runtime="runc", cgroup_version=1, inner_docker=False)
        assert "/x" not in second["Tmpfs"]  # type: ignore[operator]
        assert second["Binds"] == ["/sys/fs/cgroup:/sys/fs/cgroup:ro"]


def test_host_socket_mounts_finds_docker_sockets() -> None:
    binds = [
        "/var/run/docker.sock:/var/run/docker.sock",
        "/run/docker.sock:/x.sock:ro",
        "/var/run/containai-docker.sock:/var/run/docker.sock",
        "/home/u/proj:/home/agent/workspace",
    ]
    assert host_socket_mounts(binds) == binds[:3]


def test_isolation_is_sysbox_only_under_sysbox() -> None:
    assert isolation("sysbox-runc") == "sysbox"
    assert isolation("runc") == "reduced"
    assert isolation("crun") == "reduced"


def test_reduced_isolation_sentence_is_one_plain_sentence() -> None:
    assert REDUCED_ISOLATION_SENTENCE.count(". ") == 0
    assert REDUCED_ISOLATION_SENTENCE.endswith(".")
    assert "root" in REDUCED_ISOLATION_SENTENCE
    assert "Sysbox" in REDUCED_ISOLATION_SENTENCE
