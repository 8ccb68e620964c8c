"""The one error tree of cai. Every layer raises subclasses of :class:`CaiError`.

```
CaiError
├── InvalidTransition          illegal input to a state machine; state unchanged
├── ConfigError                bad config file, flag or environment variable
├── UsageError                 a command used wrongly (missing target, conflicting flags)
├── NeedsRoot                  an operation that must run as root
├── ProbeError                 a readiness/liveness probe gave up
│   └── ProbeTimeout
├── PortRangeExhausted         no free SSH port in the configured range
├── NameCollision              no free container name (suffix -2..-99 used up)
├── AmbiguousWorkspace         several containers carry the same workspace label
├── ImageError                 an image is missing or its build failed
└── BackendError               something outside cai failed (trio: *Broken*)
    ├── DockerUnavailable      the engine does not answer
    ├── DockerError            the engine answered with an error
    ├── ContainerGone          the container no longer exists
    ├── SSHUnavailable         sshd refused or the connection broke
    └── HostKeyMismatch        the container's host key differs from the pinned one
```

Subclasses carry context attributes (``container``, ``state``) where they have them. The CLI prints
``TypeName: message`` and exits with :attr:`CaiError.exit_code`.
"""

from __future__ import annotations


class CaiError(Exception):
    """Root of every error cai raises on purpose."""

    exit_code: int = 1

    def __init__(self, message: str, *, container: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.container = container

    def __str__(self) -> str:
        return self.message


class InvalidTransition(CaiError):
    """An event that the current state does not accept. The machine is left unchanged."""

    def __init__(self, message: str, *, state: str, event: str, container: str | None = None):
        super().__init__(message, container=container)
        self.state = state
        self.event = event


class ConfigError(CaiError):
    exit_code = 2


class UsageError(CaiError):
    exit_code = 2


class NeedsRoot(CaiError):
    exit_code = 4


class ProbeError(CaiError):
    exit_code = 12


class ProbeTimeout(ProbeError):
    pass


class PortRangeExhausted(CaiError):
    exit_code = 12


class NameCollision(CaiError):
    pass


class AmbiguousWorkspace(CaiError):
    exit_code = 2


class ImageError(CaiError):
    exit_code = 3


class BackendError(CaiError):
    """Something outside cai failed."""


class DockerUnavailable(BackendError):
    exit_code = 3


class DockerError(BackendError):
    def __init__(self, message: str, *, status: int = 0, container: str | None = None):
        super().__init__(message, container=container)
        self.status = status


class ContainerGone(BackendError):
    exit_code = 11


class SSHUnavailable(BackendError):
    exit_code = 13


class HostKeyMismatch(BackendError):
    exit_code = 14
