"""Every policy of the pack, in one list."""

from . import aws, kubernetes, stack

ALL_POLICIES = (*aws.POLICIES, *kubernetes.POLICIES, *stack.POLICIES)

__all__ = ["ALL_POLICIES"]
