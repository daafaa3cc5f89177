"""Every policy of the pack, in one list."""

from . import aws, azure, gcp, kubernetes, stack

ALL_POLICIES = (*aws.POLICIES, *gcp.POLICIES, *azure.POLICIES, *kubernetes.POLICIES, *stack.POLICIES)

__all__ = ["ALL_POLICIES"]
