"""The workspace model: configuration, names, hostnames, labels and resource limits.

Synchronous and free of I/O frameworks; the orchestrator calls :func:`resolve_workspace` from a
worker thread and reads the :class:`WorkspaceSpec` it returns.
"""

from __future__ import annotations

from containai.model._config import CONFIG_ENV_VAR as CONFIG_ENV_VAR
from containai.model._config import ENV_VARS as ENV_VARS
from containai.model._config import KEYS as KEYS
from containai.model._config import AgentSection as AgentSection
from containai.model._config import Config as Config
from containai.model._config import EngineSection as EngineSection
from containai.model._config import ImportSection as ImportSection
from containai.model._config import ResourcesSection as ResourcesSection
from containai.model._config import SSHSection as SSHSection
from containai.model._config import check_key as check_key
from containai.model._config import find_workspace_config as find_workspace_config
from containai.model._config import parse_port_range as parse_port_range
from containai.model._config import user_config_path as user_config_path
from containai.model._config import validate_volume as validate_volume
from containai.model._config_edit import config_file_for as config_file_for
from containai.model._config_edit import set_value as set_value
from containai.model._config_edit import unset_value as unset_value
from containai.model._naming import compose_name as compose_name
from containai.model._naming import container_name as container_name
from containai.model._naming import git_branch as git_branch
from containai.model._naming import owner as owner
from containai.model._naming import reset_volume_name as reset_volume_name
from containai.model._naming import sanitize_hostname as sanitize_hostname
from containai.model._naming import suffixed as suffixed
from containai.model._naming import workspace_labels as workspace_labels
from containai.model._resources import default_cpus as default_cpus
from containai.model._resources import default_memory as default_memory
from containai.model._resources import format_cpus as format_cpus
from containai.model._resources import format_size as format_size
from containai.model._resources import nano_cpus as nano_cpus
from containai.model._resources import parse_cpus as parse_cpus
from containai.model._resources import parse_memory as parse_memory
from containai.model._resources import parse_size as parse_size
from containai.model._workspace import Overrides as Overrides
from containai.model._workspace import ResolvedConfig as ResolvedConfig
from containai.model._workspace import Setting as Setting
from containai.model._workspace import WorkspaceSpec as WorkspaceSpec
from containai.model._workspace import load_config as load_config
from containai.model._workspace import resolve_workspace as resolve_workspace
from containai.model._workspace import workspace_path as workspace_path

__all__ = [
    "CONFIG_ENV_VAR",
    "ENV_VARS",
    "KEYS",
    "AgentSection",
    "Config",
    "EngineSection",
    "ImportSection",
    "Overrides",
    "ResolvedConfig",
    "ResourcesSection",
    "SSHSection",
    "Setting",
    "WorkspaceSpec",
    "check_key",
    "compose_name",
    "config_file_for",
    "container_name",
    "default_cpus",
    "default_memory",
    "find_workspace_config",
    "format_cpus",
    "format_size",
    "git_branch",
    "load_config",
    "nano_cpus",
    "owner",
    "parse_cpus",
    "parse_memory",
    "parse_port_range",
    "parse_size",
    "reset_volume_name",
    "resolve_workspace",
    "sanitize_hostname",
    "set_value",
    "suffixed",
    "unset_value",
    "user_config_path",
    "validate_volume",
    "workspace_labels",
    "workspace_path",
]
