"""Perception: camera frames -> detections -> world state (OpenCV; knows nothing of PyBullet)."""
