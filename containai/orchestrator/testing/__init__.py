"""In-memory fakes of the Docker and SSH ports, for fast tests of the core (like trio.testing
and httpx.MockTransport). Real-engine tests use the adapters instead."""

from __future__ import annotations

from containai.orchestrator.testing._fake_docker import DEFAULT_BOOT as DEFAULT_BOOT
from containai.orchestrator.testing._fake_docker import FakeContainer as FakeContainer
from containai.orchestrator.testing._fake_docker import FakeDocker as FakeDocker
from containai.orchestrator.testing._fake_ssh import FakeSSH as FakeSSH

__all__ = ["DEFAULT_BOOT", "FakeContainer", "FakeDocker", "FakeSSH"]
