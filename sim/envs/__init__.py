"""Gymnasium environments, registered as ``tianji/<Name>-v0``.

Registration happens on ``import tianji.sim``. Gymnasium 1.0 dropped entry-point plugins,
so without that import use the module prefix, which makes Gymnasium import it:
``gymnasium.make("tianji.sim:tianji/TiagoReach-v0")``.
"""

from __future__ import annotations

from gymnasium.envs.registration import register, registry

from tianji.sim.envs.base import DomainRandomization, TianjiEnv

ENVIRONMENTS: dict[str, tuple[str, int]] = {  # id -> (entry point, max episode steps)
    "tianji/TiagoReach-v0": ("tianji.sim.envs.reach:TiagoReachEnv", 100),
    "tianji/AllegroReach-v0": ("tianji.sim.envs.reach:AllegroReachEnv", 100),
    "tianji/AllegroReorient-v0": ("tianji.sim.envs.allegro:AllegroReorientEnv", 200),
    "tianji/AllegroGrasp-v0": ("tianji.sim.envs.allegro:AllegroGraspEnv", 250),
    "tianji/G1Balance-v0": ("tianji.sim.envs.g1:G1BalanceEnv", 1000),
    "tianji/G1Walk-v0": ("tianji.sim.envs.g1:G1WalkEnv", 1000),
    "tianji/CarePickCup-v0": ("tianji.sim.envs.care_pick:CarePickCupEnv", 200),
    "tianji/CareDrinking-v0": ("tianji.sim.envs.care_feeding:CareDrinkingEnv", 300),
    "tianji/CareFeeding-v0": ("tianji.sim.envs.care_feeding:CareFeedingEnv", 200),
    "tianji/CareBedBathing-v0": ("tianji.sim.envs.care_bathing:CareBedBathingEnv", 300),
    "tianji/CareFallResponse-v0": ("tianji.sim.envs.care_fall:CareFallResponseEnv", 600),
}


def register_envs() -> None:
    """Register every Tianji environment with Gymnasium (idempotent)."""
    for env_id, (entry_point, max_steps) in ENVIRONMENTS.items():
        if env_id not in registry:
            register(id=env_id, entry_point=entry_point, max_episode_steps=max_steps)


register_envs()

__all__ = ["ENVIRONMENTS", "DomainRandomization", "TianjiEnv", "register_envs"]
