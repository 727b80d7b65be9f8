"""Bridge: the ZeroMQ protocol, the robot-side server and the RemoteRobot client."""
