"""Every policy of the pack, in one list, and the pack's name."""

from . import aws, azure, gcp, kubernetes, stack

PACK_NAME = "ai-platform"
ALL_POLICIES = (*aws.POLICIES, *gcp.POLICIES, *azure.POLICIES, *kubernetes.POLICIES, *stack.POLICIES)

__all__ = ["ALL_POLICIES", "PACK_NAME"]
