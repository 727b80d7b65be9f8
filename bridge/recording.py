"""Record every bridge message to an MCAP file, and read it back (``--record FILE``, ``tianji bridge replay``).

Each ZeroMQ frame is stored byte for byte as one MCAP message: channel topic
``<direction>/<type>`` (``tx/state``, ``rx/command``, ``rx/invalid`` for frames that did not
decode; the direction is as seen by the side that records), message encoding ``msgpack``, no
schema (the schema is ``bridge/PROTOCOL.md``, protocol version in the channel metadata),
``log_time`` = wall clock when sent or received (ns since the Unix epoch), ``sequence`` = the
message's ``seq`` modulo 2^32. A ``tianji.bridge`` metadata record says which side recorded.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tianji.bridge.protocol import PROTOCOL_VERSION, ProtocolError, decode
from tianji.control.errors import AssetError

ENCODING = "msgpack"


def _mcap_writer():
    try:
        from mcap.writer import CompressionType, Writer
    except ImportError as exc:
        raise ImportError("recording needs the 'mcap' package: pip install mcap") from exc
    return Writer, CompressionType


class Recorder:
    """Thread-safe MCAP writer of raw bridge frames. Use as a context manager, or call :meth:`close`."""

    def __init__(self, path: str | Path, side: str, endpoint: str = "") -> None:
        writer_cls, compression = _mcap_writer()
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("wb")
        self._writer = writer_cls(self._file, compression=compression.NONE)
        self._writer.start(profile="", library="tianji-bridge")
        self._writer.add_metadata(
            "tianji.bridge",
            {"side": side, "endpoint": endpoint, "protocol_version": str(PROTOCOL_VERSION), "started": time.ctime()},
        )
        self._channels: dict[str, int] = {}
        self._lock = threading.Lock()
        self._closed = False
        self.count = 0

    def write(self, direction: str, kind: str, frame: bytes, seq: int = 0, log_time_ns: int | None = None) -> None:
        """Store one frame under ``direction/kind`` (direction ``tx`` or ``rx``)."""
        now = log_time_ns if log_time_ns is not None else time.time_ns()
        topic = f"{direction}/{kind}"
        with self._lock:
            if self._closed:
                return
            channel = self._channels.get(topic)
            if channel is None:
                channel = self._writer.register_channel(
                    topic, ENCODING, 0, {"protocol_version": str(PROTOCOL_VERSION), "schema": "bridge/PROTOCOL.md"}
                )
                self._channels[topic] = channel
            self._writer.add_message(channel, now, bytes(frame), now, seq % (1 << 32))
            self.count += 1

    def close(self) -> None:
        """Finish the file (writes the MCAP summary); idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._writer.finish()
            self._file.close()

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class Recorded:
    """One recorded frame: ``direction`` (tx/rx), ``kind`` (message type), wall time (ns), raw bytes."""

    direction: str
    kind: str
    log_time_ns: int
    data: bytes

    def decode(self) -> dict[str, Any] | None:
        """The message map, or None when the frame was not a valid message."""
        try:
            return decode(self.data)
        except ProtocolError:
            return None


def read_recording(path: str | Path, topics: list[str] | None = None) -> Iterator[Recorded]:
    """Frames of a recording in log-time order, optionally only some topics (``["tx/state"]``)."""
    try:
        from mcap.reader import make_reader
    except ImportError as exc:
        raise ImportError("reading recordings needs the 'mcap' package: pip install mcap") from exc
    p = Path(path)
    if not p.is_file():
        raise AssetError(f"recording not found: {p}; record one with `tianji bridge serve --record FILE`")
    with p.open("rb") as f:
        reader = make_reader(f)
        for _schema, channel, msg in reader.iter_messages(topics=topics):
            if channel.message_encoding != ENCODING:
                continue
            direction, _, kind = channel.topic.partition("/")
            yield Recorded(direction, kind, msg.log_time, msg.data)
