"""Helpers shared by the rules: tolerant prop access, framework references, pod specs."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyComplianceFramework,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
)

GPU_RESOURCE = "nvidia.com/gpu"
TENANT_LABEL = "ai-platform.io/tenant"
MANDATORY, ADVISORY = EnforcementLevel.MANDATORY, EnforcementLevel.ADVISORY
CRITICAL, HIGH, MEDIUM, LOW = Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM, Severity.LOW


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


def open_to_internet(cidr: str) -> bool:
    try:
        return ipaddress.ip_network(cidr, strict=False).prefixlen == 0
    except ValueError:
        return False


def outside(cidrs: list[str], allowed: list[str]) -> list[str]:
    """CIDRs not inside any of `allowed` (an empty allow list allows all but 0.0.0.0/0)."""
    if not allowed:
        return []
    nets = [ipaddress.ip_network(a, strict=False) for a in allowed]
    out = []
    for c in cidrs:
        try:
            net = ipaddress.ip_network(c, strict=False)
        except ValueError:
            out.append(c)
            continue
        if not any(net.version == a.version and net.subnet_of(a) for a in nets):
            out.append(c)
    return out


CIDR_CONFIG = PolicyConfigSchema(
    properties={"allowedCidrs": {"type": "array", "items": {"type": "string"}, "default": []}}
)


def framework(name: str, version: str, reference: str) -> PolicyComplianceFramework:
    return PolicyComplianceFramework(name=name, version=version, reference=reference)


def cis_eks(control: str) -> PolicyComplianceFramework:
    return framework("CIS Amazon EKS Benchmark", "1.7.0", control)


def cis_gke(control: str) -> PolicyComplianceFramework:
    return framework("CIS Google Kubernetes Engine Benchmark", "1.6.0", control)


def cis_aks(control: str) -> PolicyComplianceFramework:
    return framework("CIS Azure Kubernetes Service Benchmark", "1.7.0", control)


def aws_fsbp(control: str) -> PolicyComplianceFramework:
    return framework("AWS Foundational Security Best Practices", "1.0.0", control)


def pss(level: str) -> PolicyComplianceFramework:
    return framework("Kubernetes Pod Security Standards", "v1", level)


def platform(reference: str) -> PolicyComplianceFramework:
    return framework("ai-platform baseline", "1", reference)


def only(resource_type: str):
    """Run a check only on resources of one type."""

    def wrap(check):
        def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
            if args.resource_type == resource_type:
                check(args, report)

        return validate

    return wrap


def resource_policy(name, description, validate, level, severity, framework, remediation, **extra):
    return ResourceValidationPolicy(
        name=name, description=description, validate=validate, enforcement_level=level, severity=severity,
        framework=framework, remediation_steps=remediation, **extra,
    )


# -- workloads ------------------------------------------------------------------------------

_POD_TEMPLATE_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}


def pod_specs(resource_type: str, props: Mapping) -> Iterator[tuple[str, Mapping]]:
    """(where, pod spec) for every pod this object would run: core workload kinds and
    KServe InferenceService components."""
    kind = resource_type.rsplit(":", 1)[-1]
    if not resource_type.startswith("kubernetes:"):
        return
    if kind == "Pod":
        yield "spec", get(props, "spec", default={})
    elif kind in _POD_TEMPLATE_KINDS:
        yield "spec.template.spec", get(props, "spec", "template", "spec", default={})
    elif kind == "CronJob":
        yield "spec.jobTemplate.spec.template.spec", get(
            props, "spec", "jobTemplate", "spec", "template", "spec", default={})
    elif kind == "InferenceService":
        for component in ("predictor", "transformer", "explainer"):
            spec = get(props, "spec", component)
            if isinstance(spec, Mapping):
                # An InferenceService component is a pod spec whose model is one more container.
                containers = list(get(spec, "containers", default=[]))
                for key, value in spec.items():
                    if isinstance(value, Mapping) and ("storageUri" in value or "modelFormat" in value):
                        containers.append({"name": key, **value})
                yield f"spec.{component}", {**spec, "containers": containers}


def containers(pod: Mapping) -> Iterator[tuple[str, Mapping]]:
    for field in ("initContainers", "containers", "ephemeralContainers"):
        for i, c in enumerate(get(pod, field, default=[])):
            yield f"{field}[{i}]({get(c, 'name', default='?')})", c


DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


def image_tag(image: str) -> str | None:
    """The tag of an image reference (None when untagged; digests count as pinned)."""
    if DIGEST.search(image):
        return "@digest"
    last = image.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


def registry(image: str) -> str:
    first = image.split("/", 1)[0]
    if "/" in image and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"
