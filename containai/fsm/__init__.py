"""The pure, synchronous state machine of one workspace container.

Events in, effects out, time as an input: nothing here awaits, reads a clock or does I/O.
"""

from __future__ import annotations

from containai.fsm._effects import AnyEffect as AnyEffect
from containai.fsm._effects import CancelProbes as CancelProbes
from containai.fsm._effects import CreateContainer as CreateContainer
from containai.fsm._effects import Effect as Effect
from containai.fsm._effects import Publish as Publish
from containai.fsm._effects import RunProbe as RunProbe
from containai.fsm._effects import StartContainer as StartContainer
from containai.fsm._effects import StopContainer as StopContainer
from containai.fsm._errors import AmbiguousWorkspace as AmbiguousWorkspace
from containai.fsm._errors import BackendError as BackendError
from containai.fsm._errors import CaiError as CaiError
from containai.fsm._errors import ConfigError as ConfigError
from containai.fsm._errors import ContainerGone as ContainerGone
from containai.fsm._errors import DockerError as DockerError
from containai.fsm._errors import DockerUnavailable as DockerUnavailable
from containai.fsm._errors import HostKeyMismatch as HostKeyMismatch
from containai.fsm._errors import ImageError as ImageError
from containai.fsm._errors import InvalidTransition as InvalidTransition
from containai.fsm._errors import NameCollision as NameCollision
from containai.fsm._errors import NeedsRoot as NeedsRoot
from containai.fsm._errors import PortRangeExhausted as PortRangeExhausted
from containai.fsm._errors import ProbeError as ProbeError
from containai.fsm._errors import ProbeTimeout as ProbeTimeout
from containai.fsm._errors import SSHUnavailable as SSHUnavailable
from containai.fsm._errors import UsageError as UsageError
from containai.fsm._events import AnyEvent as AnyEvent
from containai.fsm._events import ContainerCreated as ContainerCreated
from containai.fsm._events import ContainerDestroyed as ContainerDestroyed
from containai.fsm._events import ContainerDied as ContainerDied
from containai.fsm._events import ContainerOOMKilled as ContainerOOMKilled
from containai.fsm._events import ContainerStarted as ContainerStarted
from containai.fsm._events import DeadlineExpired as DeadlineExpired
from containai.fsm._events import Event as Event
from containai.fsm._events import InitDoneSeen as InitDoneSeen
from containai.fsm._events import ProbeFailed as ProbeFailed
from containai.fsm._events import ProbeSucceeded as ProbeSucceeded
from containai.fsm._events import SessionClosed as SessionClosed
from containai.fsm._events import SessionOpened as SessionOpened
from containai.fsm._events import SshdReadySeen as SshdReadySeen
from containai.fsm._events import StartRequested as StartRequested
from containai.fsm._events import StopRequested as StopRequested
from containai.fsm._lifecycle import SCHEMA_VERSION as SCHEMA_VERSION
from containai.fsm._lifecycle import Lifecycle as Lifecycle
from containai.fsm._lifecycle import Transition as Transition
from containai.fsm._machine import ContainerFSM as ContainerFSM
from containai.fsm._states import PROGRESS as PROGRESS
from containai.fsm._states import RESTING as RESTING
from containai.fsm._states import USABLE as USABLE
from containai.fsm._states import State as State
from containai.fsm._table import BRANCHES as BRANCHES
from containai.fsm._table import ON_EDGE as ON_EDGE
from containai.fsm._table import ON_ENTER as ON_ENTER
from containai.fsm._table import TIMEOUTS as TIMEOUTS
from containai.fsm._table import TRANSITIONS as TRANSITIONS
from containai.fsm._table import Branch as Branch
from containai.fsm._table import FromEvent as FromEvent
from containai.fsm._table import Guard as Guard

__all__ = [
    "BRANCHES",
    "ON_EDGE",
    "ON_ENTER",
    "PROGRESS",
    "RESTING",
    "SCHEMA_VERSION",
    "TIMEOUTS",
    "TRANSITIONS",
    "USABLE",
    "AmbiguousWorkspace",
    "AnyEffect",
    "AnyEvent",
    "BackendError",
    "Branch",
    "CaiError",
    "CancelProbes",
    "ConfigError",
    "ContainerCreated",
    "ContainerDestroyed",
    "ContainerDied",
    "ContainerFSM",
    "ContainerGone",
    "ContainerOOMKilled",
    "ContainerStarted",
    "CreateContainer",
    "DeadlineExpired",
    "DockerError",
    "DockerUnavailable",
    "Effect",
    "Event",
    "FromEvent",
    "Guard",
    "HostKeyMismatch",
    "ImageError",
    "InitDoneSeen",
    "InvalidTransition",
    "Lifecycle",
    "NameCollision",
    "NeedsRoot",
    "PortRangeExhausted",
    "ProbeError",
    "ProbeFailed",
    "ProbeSucceeded",
    "ProbeTimeout",
    "Publish",
    "RunProbe",
    "SSHUnavailable",
    "SessionClosed",
    "SessionOpened",
    "SshdReadySeen",
    "StartContainer",
    "StartRequested",
    "State",
    "StopContainer",
    "StopRequested",
    "Transition",
    "UsageError",
]
