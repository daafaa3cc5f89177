"""Helpers shared by the rules: tolerant prop access, framework references, pod specs."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping, Sequence
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
from pulumi_policy.proxy import UnknownValueError

GPU_RESOURCE = "nvidia.com/gpu"
TENANT_LABEL = "ai-platform.io/tenant"
MANDATORY, ADVISORY = EnforcementLevel.MANDATORY, EnforcementLevel.ADVISORY
CRITICAL, HIGH, MEDIUM, LOW = Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM, Severity.LOW


def is_list(value: Any) -> bool:
    """A list as the engine hands it to a rule: a `Sequence` proxy, never a plain `list`."""
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def items(value: Any) -> list:
    """The elements of a list-shaped value; [] for anything else (a wrong type is not a list)."""
    return list(value) if is_list(value) else []


def get(props: Any, *path: str | int, default: Any = None) -> Any:
    """props[path[0]][path[1]]..., or `default` where anything is missing. Works on the
    engine's proxies (Mapping / Sequence) and on plain dicts and lists alike."""
    current = props
    for part in path:
        if isinstance(part, int):
            if not is_list(current) or len(current) <= part:
                return default
            current = current[part]
        else:
            if not isinstance(current, Mapping) or part not in current:
                return default
            current = current[part]
    return default if current is None else current


class Deferred:
    """Runs checks element by element so that a value computed during preview (the engine's
    proxies raise `UnknownValueError` on it) hides only its own element: violations found
    elsewhere are still reported, and the policy says "can't run" only if some element could
    not be checked (`finish`)."""

    def __init__(self) -> None:
        self.unknown: UnknownValueError | None = None

    def run(self, check: Callable, *args: Any) -> Any:
        try:
            return check(*args)
        except UnknownValueError as exc:
            self.unknown = self.unknown or exc
            return None

    def finish(self) -> None:
        if self.unknown is not None:
            raise self.unknown


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



CIDR_PATTERN = (
    # IPv4 with a prefix of 0-32, or IPv6 with 0-128 (RE2- and Python-compatible, no look-arounds).
    r"^(((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
    r"/(3[0-2]|[12]?[0-9])|[0-9a-fA-F:.]*:[0-9a-fA-F:.]*/(12[0-8]|1[01][0-9]|[1-9]?[0-9]))$"
)


def bad_cidrs(cidrs) -> list[str]:
    """Entries of a CIDR list that do not parse (an IPv6 typo can pass the schema's pattern)."""
    out = []
    for c in items(cidrs):
        try:
            ipaddress.ip_network(str(c), strict=False)
        except ValueError:
            out.append(str(c))
    return out


CIDR_CONFIG = PolicyConfigSchema(properties={"allowedCidrs": {
    "type": "array", "items": {"type": "string", "pattern": CIDR_PATTERN}, "uniqueItems": True, "default": [],
    "description": "Networks (CIDR) a public Kubernetes API endpoint may admit; [] admits any but 0.0.0.0/0."}})


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

# Kinds whose objects hold no pod to run, although some carry fields named like a pod spec's.
_NO_PODS = ("CustomResourceDefinition", "ConfigMap", "Secret", "Release", "Chart", "ConfigGroup", "ConfigFile",
            "Directory", "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration")
# Where a computed value may hide a pod: under these keys an unknown is reported as such.
_POD_KEYS = ("spec", "template", "jobTemplate", "containers", "initContainers", "ephemeralContainers")
_POD_SUFFIXES = ("Spec", "Specs", "Template", "Templates", "Jobs", "Groups", "GroupSpecs")
_SERVING_COMPONENTS = ("predictor", "transformer", "explainer")
_MAX_DEPTH = 12


def kind_of(resource_type: str) -> str:
    """The Kubernetes kind of a Pulumi type; `*Patch` (server-side apply) types count as their kind."""
    kind = resource_type.rsplit(":", 1)[-1]
    return kind.removesuffix("Patch") if resource_type.startswith("kubernetes:") and kind.endswith("Patch") else kind


def group_of(resource_type: str) -> str:
    """`apps` for kubernetes:apps/v1:Deployment, `core` for core kinds."""
    middle = resource_type.split(":")[1] if resource_type.count(":") >= 2 else ""
    return middle.split("/")[0]


def _may_hide_pods(key: str) -> bool:
    return key in _POD_KEYS or key.endswith(_POD_SUFFIXES)


def pod_specs(resource_type: str, props: Mapping, deferred: Deferred | None = None) -> list[tuple[str, Mapping, Mapping]]:
    """(where, pod spec, pod metadata) for every pod this object would run: a Pod, any workload
    with a pod template (core kinds, JobSet, the Kubeflow training jobs, RayJob, LeaderWorkerSet,
    Knative Services, `*Patch` resources...), found by shape rather than by a list of kinds, and
    each KServe InferenceService component (whose model is one more container). A value
    computed during preview where a pod could be is recorded in `deferred`."""
    if not resource_type.startswith("kubernetes:") or kind_of(resource_type) in _NO_PODS:
        return []
    deferred = deferred or Deferred()
    found: list[tuple[str, Mapping, Mapping]] = []
    serving = kind_of(resource_type) == "InferenceService"

    def child(node, key):
        try:
            return node[key]
        except UnknownValueError as exc:
            if _may_hide_pods(str(key)) or isinstance(key, int):
                deferred.unknown = deferred.unknown or exc
            return None

    def walk(node, path: list[str], meta: Mapping, depth: int) -> None:
        if depth > _MAX_DEPTH:
            return
        if isinstance(node, Mapping):
            pods = child(node, "containers") if "containers" in node else None
            component = serving and len(path) == 2 and path[0] == "spec" and path[1] in _SERVING_COMPONENTS
            if is_list(pods) or component:
                found.append((".".join(path), _serving_pod(node) if component else node, meta))
                return
            inner_meta = child(node, "metadata") if "metadata" in node else None
            for key in list(node):
                if key == "metadata":
                    continue
                value = child(node, key)
                if isinstance(value, (Mapping, Sequence)) and not isinstance(value, str):
                    walk(value, [*path, str(key)], inner_meta if isinstance(inner_meta, Mapping) else meta, depth + 1)
        elif is_list(node):
            for i in range(len(node)):
                value = child(node, i)
                if isinstance(value, (Mapping, Sequence)) and not isinstance(value, str):
                    walk(value, path[:-1] + [f"{path[-1]}[{i}]"] if path else [f"[{i}]"], meta, depth + 1)

    top_meta = props.get("metadata") if isinstance(props, Mapping) and "metadata" in props else None
    top_meta = top_meta if isinstance(top_meta, Mapping) else {}
    for root in ("spec", "template"):  # a PodTemplate keeps its pod under `template`
        if isinstance(props, Mapping) and root in props:
            value = child(props, root)
            if isinstance(value, Mapping):
                walk(value, [root], top_meta, 1)
    return found


def _serving_pod(spec: Mapping) -> Mapping:
    # An InferenceService component is a pod spec whose model is one more container.
    extra = [{"name": key, **value} for key, value in spec.items()
             if isinstance(value, Mapping) and ("storageUri" in value or "modelFormat" in value)]
    if not extra:
        return spec
    return {**spec, "containers": [*items(get(spec, "containers")), *extra]}


def containers(pod: Mapping, deferred: Deferred | None = None) -> list[tuple[str, Mapping]]:
    """(where, container) for every container of a pod spec; an unknown container (or list of
    them) is recorded in `deferred` and skipped, so the others are still checked."""
    deferred = deferred or Deferred()
    out = []
    for field in ("initContainers", "containers", "ephemeralContainers"):
        listed = deferred.run(get, pod, field)
        for i in range(len(listed) if is_list(listed) else 0):
            c = deferred.run(listed.__getitem__, i)
            if isinstance(c, Mapping):
                name = deferred.run(get, c, "name")
                out.append((f"{field}[{i}]({name if isinstance(name, str) else '?'})", c))
    return out


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
