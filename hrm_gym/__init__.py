"""hrm-gym: grid-world and puzzle environments for Hierarchical Reasoning Model agents.

``import hrm_gym`` registers ``HRMForaging-v0``, ``HRMForagingChase-v0``, ``HRMMaze-v0``,
``HRMMaze-Hard-v0`` and ``HRMSudoku-v0`` with Gymnasium. This package depends on gymnasium,
numpy and pygame only; it never imports torch.
"""

from hrm_gym.registration import ENV_SPECS, register_envs

__version__ = "0.1.0"
__all__ = ["ENV_SPECS", "register_envs", "__version__"]

register_envs()
