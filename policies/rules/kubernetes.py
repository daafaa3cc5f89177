"""Kubernetes object rules (per resource): Pod Security Standards on every workload we
create, images, Services, RBAC, Helm charts and tenant namespaces."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping

from pulumi_policy import (
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from .common import (
    HIGH,
    MANDATORY,
    MEDIUM,
    TENANT_LABEL,
    cis_eks,
    containers,
    get,
    image_tag,
    platform,
    pod_specs,
    pss,
    registry,
)

HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
SERVICE = "kubernetes:core/v1:Service"
NAMESPACE = "kubernetes:core/v1:Namespace"
# Annotations that make a LoadBalancer Service internal, per cloud.
INTERNAL_LB_ANNOTATIONS = {
    "service.beta.kubernetes.io/aws-load-balancer-internal": ("true",),
    "service.beta.kubernetes.io/aws-load-balancer-scheme": ("internal",),
    "networking.gke.io/load-balancer-type": ("Internal",),
    "cloud.google.com/load-balancer-type": ("Internal",),
    "service.beta.kubernetes.io/azure-load-balancer-internal": ("true",),
}
DEFAULT_REGISTRIES = [
    "registry.k8s.io", "nvcr.io", "quay.io", "ghcr.io", "gcr.io", "*.gcr.io", "*-docker.pkg.dev",
    "mcr.microsoft.com", "public.ecr.aws", "*.dkr.ecr.*.amazonaws.com", "docker.io",
]
SAFE_CAPABILITIES = {"NET_BIND_SERVICE"}


def _pods(check: Callable[[str, Mapping, ReportViolation], None]):
    """Run `check(where, pod_spec, report)` on every pod spec the object would run."""

    def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
        for where, pod in pod_specs(args.resource_type, args.props):
            check(where, pod, report)

    return validate


def _privileged(where, pod, report):
    for name, c in containers(pod):
        if get(c, "securityContext", "privileged") is True:
            report(f"{where}.{name} runs privileged.", None)


def _host_namespaces(where, pod, report):
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if get(pod, field) is True:
            report(f"{where} shares the host's namespace ({field}).", None)


def _host_path(where, pod, report):
    for v in get(pod, "volumes", default=[]):
        if get(v, "hostPath"):
            report(f"{where} mounts hostPath volume {get(v, 'name')}.", None)


def _privilege_escalation(where, pod, report):
    for name, c in containers(pod):
        if get(c, "securityContext", "allowPrivilegeEscalation") is not False:
            report(f"{where}.{name} does not set allowPrivilegeEscalation: false.", None)


def _run_as_non_root(where, pod, report):
    pod_level = get(pod, "securityContext", "runAsNonRoot")
    for name, c in containers(pod):
        container_level = get(c, "securityContext", "runAsNonRoot")
        if container_level is False or (container_level is None and pod_level is not True):
            report(f"{where}.{name} may run as root (runAsNonRoot).", None)
        if get(c, "securityContext", "runAsUser") == 0:
            report(f"{where}.{name} runs as UID 0.", None)


def _capabilities(where, pod, report):
    for name, c in containers(pod):
        caps = get(c, "securityContext", "capabilities", default={})
        if "ALL" not in get(caps, "drop", default=[]):
            report(f"{where}.{name} does not drop ALL capabilities.", None)
        if extra := set(get(caps, "add", default=[])) - SAFE_CAPABILITIES:
            report(f"{where}.{name} adds capabilities {sorted(extra)}.", None)


def _seccomp(where, pod, report):
    allowed = ("RuntimeDefault", "Localhost")
    pod_level = get(pod, "securityContext", "seccompProfile", "type")
    for name, c in containers(pod):
        level = get(c, "securityContext", "seccompProfile", "type", default=pod_level)
        if level not in allowed:
            report(f"{where}.{name} has no RuntimeDefault/Localhost seccomp profile.", None)


def _images(args: ResourceValidationArgs):
    for where, pod in pod_specs(args.resource_type, args.props):
        for name, c in containers(pod):
            if get(c, "image"):
                yield f"{where}.{name}", str(get(c, "image"))


def _image_pinned(args: ResourceValidationArgs, report: ReportViolation) -> None:
    for where, image in _images(args):
        tag = image_tag(image)
        if tag is None or tag == "latest":
            report(f"{where} uses an unpinned image {image!r}.", None)


def _image_registry(args: ResourceValidationArgs, report: ReportViolation) -> None:
    allowed = list(args.get_config().get("allowedRegistries") or DEFAULT_REGISTRIES)
    for where, image in _images(args):
        if not any(fnmatch.fnmatch(registry(image), pattern) for pattern in allowed):
            report(f"{where} pulls {image!r} from {registry(image)}, not an allowed registry.", None)


def _internal(annotations: Mapping) -> bool:
    return any(str(annotations.get(k)) in values for k, values in INTERNAL_LB_ANNOTATIONS.items())


def _services_in_values(values, path="values"):
    """LoadBalancer services a Helm values tree asks for ({service: {type, annotations}})."""
    if isinstance(values, Mapping):
        svc = values.get("service")
        if isinstance(svc, Mapping) and svc.get("type") == "LoadBalancer":
            yield f"{path}.service", svc.get("annotations") or {}
        for key, value in values.items():
            yield from _services_in_values(value, f"{path}.{key}")


def _internal_lb(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type == SERVICE and get(args.props, "spec", "type") == "LoadBalancer":
        if not _internal(get(args.props, "metadata", "annotations", default={})):
            report("LoadBalancer Service without the cloud's internal annotation would be internet-facing.", None)
    elif args.resource_type == HELM_RELEASE:
        for where, annotations in _services_in_values(get(args.props, "values", default={})):
            if not _internal(annotations):
                report(f"Helm {where} is a LoadBalancer without the cloud's internal annotation.", None)


def _no_cluster_admin(args: ResourceValidationArgs, report: ReportViolation) -> None:
    kind = args.resource_type.rsplit(":", 1)[-1]
    if not args.resource_type.startswith("kubernetes:rbac.authorization.k8s.io/") or kind not in (
        "RoleBinding", "ClusterRoleBinding"):
        return
    if get(args.props, "roleRef", "name") == "cluster-admin":
        subjects = ", ".join(f"{get(s, 'kind')}/{get(s, 'name')}" for s in get(args.props, "subjects", default=[]))
        report(f"{kind} grants cluster-admin to {subjects or 'nobody'}.", None)


def _chart_pinned(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != HELM_RELEASE:
        return
    version = str(get(args.props, "version", default=""))
    if not version or version == "latest" or any(ch in version for ch in "^~*><|x ") or version.endswith(".x"):
        report(f"Helm chart {get(args.props, 'chart')} is not pinned to an exact version ({version or 'none'}).", None)


def _tenant_pod_security(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != NAMESPACE:
        return
    labels = get(args.props, "metadata", "labels", default={})
    if TENANT_LABEL in labels and labels.get("pod-security.kubernetes.io/enforce") != "restricted":
        report("Tenant namespace does not enforce Pod Security 'restricted'.", None)


def _pss(name, check, level, description, remediation):
    return ResourceValidationPolicy(
        name=name, description=description, validate=_pods(check), enforcement_level=MANDATORY,
        severity=HIGH, framework=pss(level), remediation_steps=remediation,
    )


POLICIES = (
    _pss("kubernetes-pod-no-privileged", _privileged, "baseline", "No privileged containers.",
         "Remove securityContext.privileged."),
    _pss("kubernetes-pod-no-host-namespaces", _host_namespaces, "baseline",
         "Pods do not share the host's network, PID or IPC namespace.", "Remove hostNetwork/hostPID/hostIPC."),
    _pss("kubernetes-pod-no-host-path", _host_path, "baseline", "Pods mount no hostPath volumes.",
         "Use a PersistentVolumeClaim, ConfigMap or emptyDir instead."),
    _pss("kubernetes-pod-no-privilege-escalation", _privilege_escalation, "restricted",
         "Containers set allowPrivilegeEscalation: false.", "Set securityContext.allowPrivilegeEscalation: false."),
    _pss("kubernetes-pod-run-as-non-root", _run_as_non_root, "restricted", "Containers run as non-root.",
         "Set securityContext.runAsNonRoot: true (pod or container) and a non-zero runAsUser."),
    _pss("kubernetes-pod-drop-capabilities", _capabilities, "restricted",
         "Containers drop ALL capabilities and add none but NET_BIND_SERVICE.",
         "Set securityContext.capabilities.drop: [ALL]."),
    _pss("kubernetes-pod-seccomp", _seccomp, "restricted", "Pods use the RuntimeDefault (or Localhost) seccomp profile.",
         "Set securityContext.seccompProfile.type: RuntimeDefault."),
    ResourceValidationPolicy(
        name="kubernetes-image-pinned", description="Images are pinned to a tag other than latest, or a digest.",
        validate=_image_pinned, enforcement_level=MANDATORY, severity=MEDIUM, framework=platform("supply-chain"),
        remediation_steps="Reference images as repo:version or repo@sha256:digest.",
    ),
    ResourceValidationPolicy(
        name="kubernetes-image-allowed-registry", description="Images come only from allowed registries (configurable).",
        validate=_image_registry, enforcement_level=MANDATORY, severity=MEDIUM, framework=cis_eks("5.1.4"),
        config_schema=PolicyConfigSchema(properties={"allowedRegistries": {
            "type": "array", "items": {"type": "string"}, "default": DEFAULT_REGISTRIES}}),
        remediation_steps="Mirror the image into an allowed registry, or add the registry to allowedRegistries in "
                          "the policy config.",
    ),
    ResourceValidationPolicy(
        name="kubernetes-service-internal-lb",
        description="LoadBalancer Services (including those a Helm chart creates) carry the cloud's internal annotation.",
        validate=_internal_lb, enforcement_level=MANDATORY, severity=HIGH, framework=platform("network-exposure"),
        remediation_steps="Add the internal annotation (e.g. service.beta.kubernetes.io/aws-load-balancer-internal: "
                          "'true'), or expose through the mesh's internal gateway.",
    ),
    ResourceValidationPolicy(
        name="kubernetes-rolebinding-no-cluster-admin", description="No RoleBinding or ClusterRoleBinding grants "
        "cluster-admin.", validate=_no_cluster_admin, enforcement_level=MANDATORY, severity=HIGH,
        framework=cis_eks("4.1.1"), remediation_steps="Bind tenants to the built-in admin/view ClusterRoles in their "
                                                     "namespace.",
    ),
    ResourceValidationPolicy(
        name="kubernetes-helm-chart-pinned", description="Helm charts are pinned to an exact version.",
        validate=_chart_pinned, enforcement_level=MANDATORY, severity=MEDIUM, framework=platform("supply-chain"),
        remediation_steps="Pin the chart in components/addons/versions.py.",
    ),
    ResourceValidationPolicy(
        name="kubernetes-namespace-pod-security", description="Tenant namespaces enforce Pod Security 'restricted'.",
        validate=_tenant_pod_security, enforcement_level=MANDATORY, severity=HIGH, framework=pss("restricted"),
        remediation_steps="Label the namespace pod-security.kubernetes.io/enforce: restricted (Tenant does).",
    ),
)
