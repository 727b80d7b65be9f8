"""World: cameras agree with geometry, video recording, contacts, seeding, isolation of worlds."""

from __future__ import annotations

from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import pybullet as pb
import pytest

from tianji.sim import CameraIntrinsics, World, WorldConfig, look_at


def _sphere(world: World, position: tuple[float, float, float], radius: float, mass: float = 0.0) -> int:
    shape = world.client.createCollisionShape(pb.GEOM_SPHERE, radius=radius)
    visual = world.client.createVisualShape(pb.GEOM_SPHERE, radius=radius, rgbaColor=[1, 0, 0, 1])
    return world.client.createMultiBody(mass, shape, visual, list(position))


def _project(k_matrix: np.ndarray, pose: np.ndarray, point: np.ndarray) -> tuple[np.ndarray, float]:
    cam = pose[:3, :3].T @ (point - pose[:3, 3])
    uv = (k_matrix @ (cam / cam[2]))[:2]
    return uv, float(cam[2])


def test_camera_projects_a_known_point_where_pybullet_draws_it(world: World) -> None:
    center = np.array([1.2, 0.35, 0.6])
    radius = 0.05
    sphere = _sphere(world, tuple(center), radius)
    intr = CameraIntrinsics(320, 240, 60.0, near=0.05, far=10.0)
    pose = look_at([-0.5, -0.3, 1.2], [1.0, 0.2, 0.4])
    frame = world.render(pose=pose, intrinsics=intr, shadows=False)

    assert frame.rgb.shape == (240, 320, 3) and frame.rgb.dtype == np.uint8
    assert frame.depth.shape == (240, 320) and frame.depth.dtype == np.float32
    assert frame.segmentation is not None and frame.segmentation.shape == (240, 320)
    assert np.allclose(frame.intrinsics, [[207.846, 0, 160], [0, 207.846, 120], [0, 0, 1]], atol=1e-3)
    assert frame.depth.min() >= intr.near - 1e-4 and frame.depth.max() <= intr.far + 1e-3

    uv, z = _project(frame.intrinsics, frame.pose, center)
    mask = frame.segmentation == sphere
    assert mask.sum() > 20
    vs, us = np.nonzero(mask)
    centroid = np.array([us.mean() + 0.5, vs.mean() + 0.5])  # pixel centres
    assert np.linalg.norm(centroid - uv) < 0.3, f"sphere drawn at {centroid}, projected at {uv}"
    u, v = int(uv[0]), int(uv[1])
    assert frame.segmentation[v, u] == sphere
    assert z - radius - 0.01 < frame.depth[v, u] < z - radius + 0.01  # front surface of the sphere


def test_depth_of_the_floor_matches_the_ray_plane_intersection(world: World) -> None:
    intr = CameraIntrinsics(160, 120, 50.0)
    pose = look_at([0.0, -2.0, 1.5], [0.0, 0.0, 0.0])
    frame = world.render(pose=pose, intrinsics=intr, shadows=False)
    k_inv = np.linalg.inv(frame.intrinsics)
    for u, v in [(80, 60), (20, 100), (140, 30)]:
        ray = pose[:3, :3] @ (k_inv @ np.array([u + 0.5, v + 0.5, 1.0]))
        t = -pose[2, 3] / ray[2]  # hits z = 0
        expected_z = t  # ray has unit optical z, so t is the depth along the optical axis
        assert frame.depth[v, u] == pytest.approx(expected_z, rel=0.01)


def test_video_recording_writes_an_mp4_with_the_expected_frames(world: World, tmp_path: Path) -> None:
    world.add_robot("tiago")
    out = tmp_path / "clip.mp4"
    world.start_recording(out, look_at([2, -2, 1.5], [0, 0, 0.6]), CameraIntrinsics(160, 120, 60.0), fps=30)
    world.step(60)  # 1 s at 60 Hz
    (written,) = world.stop_recording()
    assert written == out and out.stat().st_size > 1000
    with imageio.get_reader(out) as reader:
        assert reader.count_frames() == 30
        assert reader.get_data(0).shape == (120, 160, 3)


def test_contact_force_of_a_resting_body_equals_its_weight(world: World) -> None:
    ball = _sphere(world, (0.0, 0.0, 0.2), 0.05, mass=2.0)
    world.step(120)
    assert world.contact_force(ball, world.ground_id) == pytest.approx(2.0 * 9.81, rel=0.02)
    assert all(c.body_a == ball for c in world.contacts(ball))


def test_worlds_are_isolated_and_seeded() -> None:
    with World(WorldConfig(seed=5)) as a, World(WorldConfig(seed=5)) as b:
        assert a.rng.uniform() == b.rng.uniform()
        ball = _sphere(a, (0.0, 0.0, 1.0), 0.05, mass=1.0)
        a.step(30)
        assert [name for _, name in b.bodies()] == [name for _, name in a.bodies()][:1]  # b only has its floor
        assert a.base_pose(ball)[0][2] < 0.9  # fell in a
        b.step(30)
        assert a.time == pytest.approx(b.time) == pytest.approx(0.5)


def test_closed_world_refuses_work() -> None:
    world = World()
    world.close()
    world.close()  # idempotent
    with pytest.raises(Exception, match="closed"):
        world.step()


def test_bad_world_settings_are_explained() -> None:
    with pytest.raises(ValueError, match="timestep"):
        WorldConfig(timestep=0.5)
    with pytest.raises(ValueError, match="fov_deg"):
        CameraIntrinsics(fov_deg=0)


def test_robot_head_camera_follows_the_head(world: World) -> None:
    tiago = world.add_robot("tiago")
    world.step(5)
    frame = tiago.observe(cameras=["head"]).cameras["head"]
    assert frame.rgb.shape == (240, 320, 3)
    head = tiago.link_pose("xtion_rgb_optical_frame")
    assert np.allclose(frame.pose[:3, 3], head[:3], atol=1e-5)
    assert frame.pose[2, 2] < 0.2  # optical axis roughly horizontal at the home pose
