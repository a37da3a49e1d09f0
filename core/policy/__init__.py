"""The escalation policy: pure decisions from (before, after, observation, now) to actions."""
from core.policy.config import PolicyFile, parse_policy
from core.policy.escalation_policy import EscalationPolicy, load_policy
from core.policy.report import explain, status_rows

BasicPolicy = EscalationPolicy  # the spine's name for the policy class

__all__ = ["BasicPolicy", "EscalationPolicy", "PolicyFile", "explain", "load_policy",
           "parse_policy", "status_rows"]
