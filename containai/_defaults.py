"""Constants shared by every layer: engine location, labels, paths, image names.

Pure stdlib, no I/O at import. Paths that depend on the user's environment are functions so
tests can point ``HOME`` / ``XDG_*`` somewhere else.
"""

from __future__ import annotations

import os
from pathlib import Path

from containai import __version__

# -- the dedicated engine ---------------------------------------------------------------------
ENGINE_SOCKET = "/var/run/containai-docker.sock"
ENGINE_HOST = f"unix://{ENGINE_SOCKET}"
ENGINE_CONFIG = Path("/etc/containai/docker/daemon.json")
ENGINE_DATA_ROOT = Path("/var/lib/containai-docker")
ENGINE_EXEC_ROOT = Path("/var/run/containai-docker")
ENGINE_PIDFILE = Path("/var/run/containai-docker.pid")
ENGINE_LOG = Path("/var/log/containai/dockerd.log")
ENGINE_BRIDGE = "cai0"
ENGINE_BRIDGE_CIDR = "172.30.0.1/16"
ENGINE_CONTEXT = "containai"
SYSBOX_RUNC = Path("/usr/bin/sysbox-runc")

# -- labels on every container cai creates ----------------------------------------------------
LABEL_MANAGED = "containai.managed"
LABEL_WORKSPACE = "containai.workspace"
LABEL_NAME = "containai.name"
LABEL_VERSION = "containai.version"
LABEL_OWNER = "containai.owner"
LABEL_DATA_VOLUME = "containai.data-volume"
LABEL_SSH_PORT = "containai.ssh-port"
LABEL_SSH_PORT_RANGE = "containai.ssh-port-range"
LABEL_INNER_DOCKER = "containai.inner-docker"
LABEL_TEMPLATE = "containai.template"
LABEL_TEMPLATE_HASH = "containai.template-hash"
MANAGED_FILTER = f"{LABEL_MANAGED}=true"

# -- images -----------------------------------------------------------------------------------
IMAGE_REPO = "containai"
IMAGE_LAYERS = ("base", "sdks", "full")
BOOTSTRAP_IMAGE = f"{IMAGE_REPO}/rootfs:bookworm"


def image_ref(layer: str, version: str = __version__) -> str:
    """The tag of one image layer, e.g. ``containai/base:0.1.0``."""
    return f"{IMAGE_REPO}/{layer}:{version}"


# -- inside the container ---------------------------------------------------------------------
AGENT_USER = "agent"
AGENT_UID = 1000
WORKSPACE_MOUNT = "/home/agent/workspace"
DATA_MOUNT = "/mnt/agent-data"
DEFAULT_DATA_VOLUME = "containai-data"
MARKER_INIT_DONE = "containai-marker: init-done"
MARKER_SSHD_READY = "containai-marker: sshd-ready"

# -- SSH --------------------------------------------------------------------------------------
SSH_PORT_RANGE = (2300, 2500)
SSH_HOST_PREFIX = "containai-"


def config_home() -> Path:
    """``$XDG_CONFIG_HOME/containai`` (default ``~/.config/containai``)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "containai"


def state_home() -> Path:
    """``$XDG_STATE_HOME/containai`` (default ``~/.local/state/containai``)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "containai"


def ssh_dir() -> Path:
    """The user's ``~/.ssh``."""
    return Path.home() / ".ssh"
