"""Helpers shared by the rules: prop access that tolerates missing keys."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi_policy import PolicyComplianceFramework

GPU_RESOURCE = "nvidia.com/gpu"
TENANT_LABEL = "ai-platform.io/tenant"


def get(props: Any, *path: str | int, default: Any = None) -> Any:
    """props[path[0]][path[1]]..., or `default` where anything is missing."""
    current = props
    for part in path:
        if isinstance(part, int):
            if not isinstance(current, (list, tuple)) or len(current) <= part:
                return default
            current = current[part]
        else:
            if not isinstance(current, Mapping) or part not in current:
                return default
            current = current[part]
    return default if current is None else current


def cis_eks(control: str) -> PolicyComplianceFramework:
    return PolicyComplianceFramework(name="CIS Amazon EKS Benchmark", version="1.7.0", reference=control)


def pss(level: str) -> PolicyComplianceFramework:
    return PolicyComplianceFramework(name="Kubernetes Pod Security Standards", version="v1", reference=level)


def platform(reference: str) -> PolicyComplianceFramework:
    return PolicyComplianceFramework(name="ai-platform baseline", version="1", reference=reference)
