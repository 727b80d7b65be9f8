"""Tianji: an embodied-intelligence robotics stack.

The layers install as subpackages of this one: ``tianji.sim``, ``tianji.control``,
``tianji.perception``, ``tianji.policies``, ``tianji.bridge`` and ``tianji.assets``.
"""

__version__ = "0.1.0"
