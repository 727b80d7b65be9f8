"""Posture from the 3D extent of a person's points, and a fall detector on the posture time series.

Rules (heights are metres above the floor, measured on the person's depth points; see
perception/README.md for how they were chosen on the simulated patient, 1.78 m tall):

* on a bed (at least half the points over a bed's footprint, lowest point above
  ``BED_CLEARANCE`` below the mattress) and top lower than mattress + ``LYING_RISE``: ``lying_in_bed``;
  on a bed and higher: ``sitting`` (sitting up in bed), unless the top is ``BED_STANDING_RISE`` (1.2 m)
  or more above the mattress (``standing``), whether or not the top is cut off by the image
* top below ``FALLEN_TOP`` (0.6 m), or below ``LOW_TOP`` (0.9 m) while longer than
  ``LYING_LENGTH`` (1.0 m) horizontally, outside a bed: ``fallen``
* top at or above ``STANDING_TOP`` (1.5 m): ``standing``
* otherwise (upright but lower): ``sitting``

A person cut by the top of the image has a top height that is only a lower bound: a cut
top that already reaches ``SITTING_TOP_MAX`` (1.35 m) counts as standing; below that, the
feet decide: a seated person's feet are ``FEET_OFFSET_SITTING`` (0.25 m) or more in front of
the torso (the thighs are horizontal), a standing person's are under it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tianji.control.world_state import Posture

FALLEN_TOP = 0.6
LOW_TOP = 0.9
LYING_LENGTH = 1.0
STANDING_TOP = 1.5
SITTING_TOP_MAX = 1.35
FEET_OFFSET_SITTING = 0.25
LYING_RISE = 0.55
BED_STANDING_RISE = 1.2  # m above the mattress: only someone standing on the bed is this tall there
BED_CLEARANCE = 0.15
FALL_HOLD_TIME = 1.0  # s: `fallen` must hold this long before a fall event is raised
MAX_GAP = 1.0  # s: frames without a person longer than this restart the hold timer


def classify_posture(
    top: float,
    length: float,
    on_bed: bool,
    mattress_top: float | None = None,
    top_cut: bool = False,
    feet_offset: float | None = None,
) -> tuple[Posture, float]:
    """(posture, confidence 0..1) from the person's top height, horizontal length and bed overlap.

    ``feet_offset`` is the horizontal distance (m) from the torso (points above 0.85 m) to the
    feet (points below 0.25 m), when both are visible.
    """
    if on_bed and mattress_top is not None:
        rise = top - mattress_top
        if rise < LYING_RISE:
            return Posture.LYING_IN_BED, 0.9
        if rise >= BED_STANDING_RISE:
            return Posture.STANDING, 0.6
        return Posture.SITTING, 0.4 if top_cut else 0.6  # sitting up in bed (a cut top is a lower bound)
    if not on_bed and not top_cut:
        if top < FALLEN_TOP:
            return Posture.FALLEN, 0.9
        if top < LOW_TOP and length > LYING_LENGTH:
            return Posture.FALLEN, 0.6
    if top >= STANDING_TOP or (top_cut and top >= SITTING_TOP_MAX):
        return Posture.STANDING, 0.9 if not top_cut else 0.6
    if top_cut:
        if feet_offset is not None:
            return (Posture.SITTING, 0.6) if feet_offset >= FEET_OFFSET_SITTING else (Posture.STANDING, 0.6)
        return Posture.SITTING, 0.4
    if on_bed:
        return Posture.SITTING, 0.6  # sitting up in bed
    margin = min(top - LOW_TOP, STANDING_TOP - top)
    return Posture.SITTING, 0.9 if margin > 0.1 else 0.6


@dataclass
class FallEvent:
    """A confirmed fall: when it was raised, since when the person was seen fallen, and where."""

    time: float
    since: float
    position: tuple[float, float, float] | None = None
    person: str = "person"

    @property
    def latency(self) -> float:
        """Seconds from the first `fallen` frame to the event."""
        return self.time - self.since


@dataclass
class FallDetector:
    """Raise one :class:`FallEvent` when ``fallen`` holds for ``hold_time`` seconds.

    ``unknown`` frames (person not found) neither confirm nor cancel, unless the gap since
    the last `fallen` frame exceeds ``max_gap``; any other posture cancels the timer and
    re-arms the detector after an event. So the event comes at the first frame at least
    ``hold_time`` after the first `fallen` frame: latency <= hold_time + one frame period.
    """

    hold_time: float = FALL_HOLD_TIME
    max_gap: float = MAX_GAP
    person: str = "person"
    events: list[FallEvent] = field(default_factory=list)
    _since: float | None = None
    _last_fallen: float | None = None
    _raised: bool = False

    def update(
        self, posture: Posture | str, timestamp: float, position: tuple[float, float, float] | None = None
    ) -> FallEvent | None:
        """Feed one posture estimate; returns the event on the frame that confirms a fall."""
        posture = Posture(posture)
        if posture is Posture.FALLEN:
            if self._since is None or (self._last_fallen is not None and timestamp - self._last_fallen > self.max_gap):
                self._since = timestamp
            self._last_fallen = timestamp
            if not self._raised and timestamp - self._since >= self.hold_time - 1e-9:
                self._raised = True
                event = FallEvent(timestamp, self._since, position, self.person)
                self.events.append(event)
                return event
            return None
        if posture is Posture.UNKNOWN:
            if self._last_fallen is not None and timestamp - self._last_fallen > self.max_gap and not self._raised:
                self._since = None
            return None
        self._since, self._last_fallen, self._raised = None, None, False
        return None

    @property
    def fallen(self) -> bool:
        """True between a raised event and the next non-fallen posture."""
        return self._raised

    def reset(self) -> None:
        """Forget the history (events are kept)."""
        self._since, self._last_fallen, self._raised = None, None, False
