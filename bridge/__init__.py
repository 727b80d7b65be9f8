"""Bridge: the ZeroMQ protocol, the robot-side server and the RemoteRobot client.

``RemoteRobot`` implements :class:`tianji.control.Robot` over the wire; ``BridgeServer``
serves any Robot (a hardware :class:`~tianji.bridge.drivers.Driver` or the simulator). See
``bridge/README.md`` and ``bridge/PROTOCOL.md``.
"""

from tianji.bridge.client import RemoteRobot
from tianji.bridge.drivers import Driver, available_drivers, load_driver
from tianji.bridge.protocol import (
    PROTOCOL_VERSION,
    BridgeConnectionError,
    BridgeError,
    ControllerBusyError,
    ProtocolError,
    VersionMismatchError,
)
from tianji.bridge.server import BridgeServer
from tianji.bridge.session import ServerConfig

__all__ = [
    "PROTOCOL_VERSION",
    "BridgeConnectionError",
    "BridgeError",
    "BridgeServer",
    "ControllerBusyError",
    "Driver",
    "ProtocolError",
    "RemoteRobot",
    "ServerConfig",
    "VersionMismatchError",
    "available_drivers",
    "is_remote",
    "load_driver",
]


def is_remote(robot: str) -> bool:
    """True for a ``--robot`` value that names a bridge server (``tcp://HOST:PORT``) rather than a simulator."""
    return robot.startswith("tcp://")
