"""The escalation policy: pure decisions from (before, after, observation, now) to actions."""
from core.policy.basic import BasicPolicy, PolicyFile, load_policy

__all__ = ["BasicPolicy", "PolicyFile", "load_policy"]
