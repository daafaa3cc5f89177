"""Kubernetes object rules (per resource): Pod Security Standards on every workload we
create, images, Services, RBAC, Helm charts and tenant namespaces."""

from __future__ import annotations

import fnmatch
import ipaddress
import re
from collections.abc import Callable, Mapping

from pulumi_policy import (
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from .common import (
    ADVISORY,
    GPU_RESOURCE,
    HIGH,
    MANDATORY,
    MEDIUM,
    TENANT_LABEL,
    Deferred,
    cis_eks,
    containers,
    framework,
    get,
    image_tag,
    is_list,
    items,
    kind_of,
    platform,
    pod_specs,
    pss,
    registry,
)

HELM_TYPES = ("kubernetes:helm.sh/v3:Release", "kubernetes:helm.sh/v4:Chart", "kubernetes:helm.sh/v3:Chart")
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
REGISTRY_PATTERN = r"^[a-z0-9*]([a-z0-9*.:-]*[a-z0-9*])?$"
SAFE_CAPABILITIES = {"NET_BIND_SERVICE"}
# Environment variables the NVIDIA container runtime reads to choose devices and driver features.
NVIDIA_DEVICE_ENV = ("NVIDIA_VISIBLE_DEVICES", "NVIDIA_DRIVER_CAPABILITIES", "NVIDIA_MIG_CONFIG_DEVICES",
                     "NVIDIA_MIG_MONITOR_DEVICES", "NVIDIA_IMEX_CHANNELS")
CDI_ANNOTATION_PREFIX = "cdi.k8s.io/"
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
# Workloads Kueue does not admit (serving scales on traffic): no queue label expected.
SERVING_KINDS = ("InferenceService", "InferenceGraph", "ServingRuntime")

# -- exemptions -------------------------------------------------------------------------------

# Platform components that need host access, by policy. Exemptions apply only in these namespaces
# (the platform's; tenants can never be given one of these names, see components/tenancy.py),
# so a tenant namespace cannot use an exemption whatever its workloads are called.
PLATFORM_NAMESPACES = ("cert-manager", "default", "gpu-operator", "istio-system", "knative-operator",
                       "knative-serving", "kserve", "kube-node-lease", "kube-public", "kube-system",
                       "kueue-system", "monitoring")
_PRIVILEGED, _HOST_NS, _HOST_PATH = "privileged", "host-namespaces", "host-path"
_RESTRICTED = ("privilege-escalation", "run-as-non-root", "capabilities", "seccomp")
_NVIDIA = "nvidia-env"
_GPU_OPERATOR_OPERAND = (_PRIVILEGED, _HOST_PATH, *_RESTRICTED, _NVIDIA)
PLATFORM_EXEMPTIONS = (
    # (namespace, component: a glob on the workload's name, why, what it may do)
    ("gpu-operator", "nvidia-driver-daemonset*", "NVIDIA driver: loads kernel modules on the host",
     (*_GPU_OPERATOR_OPERAND, _HOST_NS)),
    ("gpu-operator", "nvidia-container-toolkit-daemonset*",
     "NVIDIA Container Toolkit: installs and configures the container runtime on the host", _GPU_OPERATOR_OPERAND),
    ("gpu-operator", "nvidia-device-plugin-daemonset*",
     "device plugin: registers GPUs with the kubelet through its host socket", _GPU_OPERATOR_OPERAND),
    ("gpu-operator", "nvidia-mig-manager*", "MIG manager: repartitions GPUs on the host",
     (*_GPU_OPERATOR_OPERAND, _HOST_NS)),
    ("gpu-operator", "nvidia-operator-validator*", "validator: checks driver, toolkit and plugin on each node",
     _GPU_OPERATOR_OPERAND),
    ("gpu-operator", "gpu-feature-discovery*", "GPU feature discovery: reads GPU properties to label nodes",
     _GPU_OPERATOR_OPERAND),
    ("gpu-operator", "nvidia-dcgm-exporter*", "DCGM exporter: reads telemetry of every GPU on the node",
     (_HOST_PATH, *_RESTRICTED, _NVIDIA)),
    ("gpu-operator", "*node-feature-discovery-worker*", "NFD worker: reads host hardware to label nodes",
     (_HOST_PATH, *_RESTRICTED)),
    ("kube-system", "istio-cni-node*", "Istio CNI: installs the CNI plugin on the host and redirects pod traffic",
     (_PRIVILEGED, _HOST_NS, _HOST_PATH, *_RESTRICTED)),
    ("monitoring", "*prometheus-node-exporter*", "node exporter: reads the host's /proc and /sys",
     (_HOST_NS, _HOST_PATH, *_RESTRICTED)),
)
COMPONENT_PATTERN = r"^[*]?[a-z0-9][a-z0-9.-]{2,}[*]?$"


def default_exemptions(check: str) -> list[dict]:
    return [{"namespace": ns, "component": component, "reason": reason}
            for ns, component, reason, checks in PLATFORM_EXEMPTIONS if check in checks]


def exemptions_schema(check: str) -> PolicyConfigSchema:
    return PolicyConfigSchema(properties={"exemptions": {
        "type": "array", "default": default_exemptions(check),
        "description": "Platform components allowed to break this rule: {namespace (a platform namespace), "
                       "component (glob on the workload's name, 3+ literal characters), reason}.",
        "items": {"type": "object", "additionalProperties": False, "required": ["namespace", "component", "reason"],
                  "properties": {"namespace": {"type": "string", "enum": list(PLATFORM_NAMESPACES)},
                                 "component": {"type": "string", "pattern": COMPONENT_PATTERN},
                                 "reason": {"type": "string", "minLength": 10}}}}})


def _workload(args: ResourceValidationArgs) -> tuple[str, str]:
    name = get(args.props, "metadata", "name", default=args.name)
    return str(get(args.props, "metadata", "namespace", default="default")), str(name)


def _exempt(args: ResourceValidationArgs) -> bool:
    namespace, name = _workload(args)
    if namespace not in PLATFORM_NAMESPACES:
        return False
    for entry in items(args.get_config().get("exemptions")):
        if isinstance(entry, Mapping) and entry.get("namespace") == namespace and \
                fnmatch.fnmatchcase(name, str(entry.get("component", ""))):
            return True
    return False


# -- pods -------------------------------------------------------------------------------------

PodCheck = Callable[[str, Mapping, Mapping, ReportViolation], None]
ContainerCheck = Callable[[str, Mapping, Mapping, ReportViolation], None]


def _pods(pod_check: PodCheck | None = None, container_check: ContainerCheck | None = None, exemptible=True):
    """Run the checks on every pod spec (and each of its containers) the object would run, one
    element at a time: a value computed during preview hides only its own element."""

    def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
        deferred = Deferred()
        if exemptible and deferred.run(_exempt, args):
            return
        for where, pod, meta in pod_specs(args.resource_type, args.props, deferred):
            if pod_check is not None:
                deferred.run(pod_check, where, pod, meta, report)
            if container_check is not None:
                for name, c in containers(pod, deferred):
                    deferred.run(container_check, f"{where}.{name}", c, pod, report)
        deferred.finish()

    return validate


def _privileged(where, c, pod, report):
    if get(c, "securityContext", "privileged") is True:
        report(f"{where} runs privileged.", None)


def _host_namespaces(where, pod, meta, report):
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if get(pod, field) is True:
            report(f"{where} shares the host's namespace ({field}).", None)


def _host_path(where, pod, meta, report):
    for v in items(get(pod, "volumes")):
        if get(v, "hostPath"):
            report(f"{where} mounts hostPath volume {get(v, 'name')}.", None)


def _privilege_escalation(where, c, pod, report):
    if get(c, "securityContext", "allowPrivilegeEscalation") is not False:
        report(f"{where} does not set allowPrivilegeEscalation: false.", None)


def _run_as_non_root(where, c, pod, report):
    container_level = get(c, "securityContext", "runAsNonRoot")
    if container_level is False or (container_level is None and get(pod, "securityContext", "runAsNonRoot") is not True):
        report(f"{where} may run as root (runAsNonRoot).", None)
    user = get(c, "securityContext", "runAsUser", default=get(pod, "securityContext", "runAsUser"))
    if user == 0:
        report(f"{where} runs as UID 0.", None)


def _capabilities(where, c, pod, report):
    caps = get(c, "securityContext", "capabilities", default={})
    if "ALL" not in [str(x) for x in items(get(caps, "drop"))]:
        report(f"{where} does not drop ALL capabilities.", None)
    if extra := {str(x) for x in items(get(caps, "add"))} - SAFE_CAPABILITIES:
        report(f"{where} adds capabilities {sorted(extra)}.", None)


def _seccomp(where, c, pod, report):
    level = get(c, "securityContext", "seccompProfile", "type",
                default=get(pod, "securityContext", "seccompProfile", "type"))
    if level not in ("RuntimeDefault", "Localhost"):
        report(f"{where} has no RuntimeDefault/Localhost seccomp profile.", None)


def _nvidia_env(where, c, pod, report):
    for e in items(get(c, "env")):
        if get(e, "name") in NVIDIA_DEVICE_ENV:
            report(f"{where} sets {get(e, 'name')}: GPUs come only from requesting nvidia.com/gpu.", None)


def _cdi_annotations(where, pod, meta, report):
    for key in get(meta, "annotations", default={}):
        if str(key).startswith(CDI_ANNOTATION_PREFIX):
            report(f"{where} is annotated {key}: CDI devices come only from the device plugin.", None)


CRITICAL_PRIORITY_CLASSES = ("system-node-critical", "system-cluster-critical")


def _critical_priority(args: ResourceValidationArgs, report: ReportViolation) -> None:
    namespace, _ = _workload(args)
    if namespace in PLATFORM_NAMESPACES:
        return
    deferred = Deferred()
    for where, pod, _ in pod_specs(args.resource_type, args.props, deferred):
        priority = deferred.run(get, pod, "priorityClassName")
        if priority in CRITICAL_PRIORITY_CLASSES:
            report(f"{where} runs at {priority}: it would preempt other tenants and the platform's controllers.", None)
    deferred.finish()


def _service_hijack(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """ExternalName and externalIPs let a Service redirect traffic meant for another name or
    address (CVE-2020-8554); the mesh gateway would call the target with its own identity."""
    if not args.resource_type.startswith("kubernetes:core/v1:Service") or kind_of(args.resource_type) != "Service":
        return
    namespace, name = _workload(args)
    if namespace in PLATFORM_NAMESPACES:
        return
    if get(args.props, "spec", "type") == "ExternalName":
        report(f"Service {name} is ExternalName ({get(args.props, 'spec', 'externalName')}).", None)
    if items(get(args.props, "spec", "externalIPs")):
        report(f"Service {name} sets externalIPs {list(items(get(args.props, 'spec', 'externalIPs')))}.", None)


SYSTEM_TAINT_KEYS = ("CriticalAddonsOnly",)


def _tolerations(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """The cluster's admission policy `ai-platform-tenant-pods`, at preview time: GPU nodes only
    for GPU work, never every taint or the system pool's."""
    namespace, _ = _workload(args)
    if namespace in PLATFORM_NAMESPACES:
        return
    deferred = Deferred()
    for where, pod, _ in pod_specs(args.resource_type, args.props, deferred):
        keys = [str(get(t, "key", default="") or "") for t in items(get(pod, "tolerations"))]
        if "" in keys:
            report(f"{where} tolerates every taint (a toleration without a key).", None)
        for key in sorted(set(keys) & set(SYSTEM_TAINT_KEYS)):
            report(f"{where} tolerates {key}: the system pool is for the platform's controllers.", None)
        if GPU_RESOURCE in keys and not any(deferred.run(_requests_gpu, c) for _, c in containers(pod, deferred)):
            report(f"{where} tolerates the {GPU_RESOURCE} taint without requesting {GPU_RESOURCE}: GPU nodes are "
                   "for GPU work, within the tenant's quota.", None)
    deferred.finish()


OWNER_LABEL = "ai-platform.io/owner"
# Kept equal to components.guardrails.INTERNAL_CIDRS (a test checks): the pack runs without the project.
INTERNAL_CIDRS = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16",
                  "168.63.129.16/32", "fc00::/7", "fe80::/10")


def _egress_problem(peer) -> str | None:
    if get(peer, "namespaceSelector") is not None:
        return "selects other namespaces (namespaceSelector)"
    block = get(peer, "ipBlock")
    if block is None:
        return None
    try:
        cidr = ipaddress.ip_network(str(get(block, "cidr")), strict=False)
        excepts = [ipaddress.ip_network(str(e), strict=False) for e in items(get(block, "except"))]
    except ValueError:
        return f"has an invalid ipBlock {get(block, 'cidr')}"
    for internal in map(ipaddress.ip_network, INTERNAL_CIDRS):
        if internal.version != cidr.version:
            continue
        if cidr.subnet_of(internal):
            return f"reaches {cidr}, inside {internal} (nodes, pods, metadata or the cloud's private services)"
        if internal.subnet_of(cidr) and not any(internal.version == e.version and internal.subnet_of(e)
                                                for e in excepts):
            return f"reaches {cidr} without excepting {internal}"
    return None


def _tenant_egress(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """The cluster's admission policy `ai-platform-tenant-network-policies`, at preview time."""
    if kind_of(args.resource_type) != "NetworkPolicy":
        return
    namespace, name = _workload(args)
    if namespace in PLATFORM_NAMESPACES or get(args.props, "metadata", "labels", OWNER_LABEL) is not None:
        return
    for i, rule in enumerate(items(get(args.props, "spec", "egress"))):
        peers = items(get(rule, "to"))
        if not peers:
            report(f"NetworkPolicy {name} egress[{i}] names no peers: it allows every destination.", None)
        for peer in peers:
            problem = _egress_problem(peer)
            if problem:
                report(f"NetworkPolicy {name} egress[{i}] {problem}.", None)


def _requests_gpu(c) -> bool:
    resources = get(c, "resources", default={})
    keys = [*get(resources, "limits", default={}), *get(resources, "requests", default={})]
    return any(str(k) == GPU_RESOURCE or str(k).startswith("nvidia.com/mig-") for k in keys)


def _queue_label(args: ResourceValidationArgs, report: ReportViolation) -> None:
    namespace, _ = _workload(args)
    if namespace in PLATFORM_NAMESPACES or kind_of(args.resource_type) in SERVING_KINDS:
        return
    deferred = Deferred()
    top = get(args.props, "metadata", "labels", default={})
    for where, pod, meta in pod_specs(args.resource_type, args.props, deferred):
        gpu = [name for name, c in containers(pod, deferred) if deferred.run(_requests_gpu, c)]
        if gpu and QUEUE_LABEL not in top and QUEUE_LABEL not in get(meta, "labels", default={}):
            report(f"{where} requests GPUs ({', '.join(gpu)}) without the {QUEUE_LABEL} label: Kueue does not "
                   "queue it, so it bypasses the tenant's ClusterQueue and fair sharing.", None)
    deferred.finish()


def _images(args: ResourceValidationArgs, deferred: Deferred):
    out = []
    for where, pod, _ in pod_specs(args.resource_type, args.props, deferred):
        for name, c in containers(pod, deferred):
            image = deferred.run(get, c, "image")
            if image:
                out.append((f"{where}.{name}", str(image)))
    return out


def _image_pinned(args: ResourceValidationArgs, report: ReportViolation) -> None:
    deferred = Deferred()
    for where, image in _images(args, deferred):
        tag = image_tag(image)
        if tag is None or tag == "latest":
            report(f"{where} uses an unpinned image {image!r}.", None)
    deferred.finish()


def _image_registry(args: ResourceValidationArgs, report: ReportViolation) -> None:
    config = args.get_config()
    # Present but empty means no registry is allowed: never fall back to the defaults.
    allowed = [str(p) for p in items(config.get("allowedRegistries", DEFAULT_REGISTRIES))]
    deferred = Deferred()
    for where, image in _images(args, deferred):
        if not any(fnmatch.fnmatchcase(registry(image), pattern) for pattern in allowed):
            report(f"{where} pulls {image!r} from {registry(image)}, not an allowed registry"
                   f"{'' if allowed else ' (allowedRegistries is empty)'}.", None)
    deferred.finish()


def _internal(annotations: Mapping) -> bool:
    return any(str(annotations.get(k)) in values for k, values in INTERNAL_LB_ANNOTATIONS.items())


def _services_in_values(values, path="values"):
    """LoadBalancer services a Helm values tree asks for ({service: {type, annotations}})."""
    if isinstance(values, Mapping):
        svc = values.get("service")
        if isinstance(svc, Mapping) and svc.get("type") == "LoadBalancer":
            annotations = svc.get("annotations")
            yield f"{path}.service", annotations if isinstance(annotations, Mapping) else {}
        for key, value in values.items():
            yield from _services_in_values(value, f"{path}.{key}")
    elif is_list(values):
        for i, value in enumerate(values):
            yield from _services_in_values(value, f"{path}[{i}]")


def _internal_lb(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type.startswith("kubernetes:core/v1:Service") and kind_of(args.resource_type) == "Service":
        if get(args.props, "spec", "type") == "LoadBalancer" and \
                not _internal(get(args.props, "metadata", "annotations", default={})):
            report("LoadBalancer Service without the cloud's internal annotation would be internet-facing.", None)
    elif args.resource_type in HELM_TYPES:
        for where, annotations in _services_in_values(get(args.props, "values", default={})):
            if not _internal(annotations):
                report(f"Helm {where} is a LoadBalancer without the cloud's internal annotation.", None)


def _no_cluster_admin(args: ResourceValidationArgs, report: ReportViolation) -> None:
    kind = kind_of(args.resource_type)
    if not args.resource_type.startswith("kubernetes:rbac.authorization.k8s.io/") or kind not in (
            "RoleBinding", "ClusterRoleBinding"):
        return
    if get(args.props, "roleRef", "name") == "cluster-admin":
        subjects = ", ".join(f"{get(s, 'kind')}/{get(s, 'name')}" for s in items(get(args.props, "subjects")))
        report(f"{args.resource_type.rsplit(':', 1)[-1]} grants cluster-admin to {subjects or 'nobody'}.", None)


EXACT_VERSION = re.compile(r"^v?[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.+-]+)?$")


def _chart_pinned(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type not in HELM_TYPES:
        return
    version = str(get(args.props, "version", default=""))
    if not EXACT_VERSION.match(version):
        report(f"Helm chart {get(args.props, 'chart')} is not pinned to an exact version ({version or 'none'}).", None)


def _tenant_pod_security(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if not args.resource_type.startswith("kubernetes:core/v1:Namespace") or kind_of(args.resource_type) != "Namespace":
        return
    labels = get(args.props, "metadata", "labels", default={})
    if TENANT_LABEL in labels and labels.get("pod-security.kubernetes.io/enforce") != "restricted":
        report("Tenant namespace does not enforce Pod Security 'restricted'.", None)


# GPU Operator values that keep unprivileged containers from choosing GPUs by environment variable.
_ENVVAR_UNPRIVILEGED = "ACCEPT_NVIDIA_VISIBLE_DEVICES_ENVVAR_WHEN_UNPRIVILEGED"
_AS_VOLUME_MOUNTS = "ACCEPT_NVIDIA_VISIBLE_DEVICES_AS_VOLUME_MOUNTS"


def _env_value(env, name: str) -> str | None:
    for e in items(env):
        if get(e, "name") == name:
            return str(get(e, "value", default=""))
    return None


def _gpu_operator_isolation(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """NVIDIA's hardening: the toolkit ignores NVIDIA_VISIBLE_DEVICES in unprivileged containers,
    and the device plugin hands devices over by CDI (the chart's default) or volume mounts.
    https://docs.nvidia.com/datacenter/cloud-native/container-toolkit/latest/ (config.toml)"""
    if args.resource_type not in HELM_TYPES or not str(get(args.props, "chart", default="")).endswith("gpu-operator"):
        return
    values = get(args.props, "values", default={})
    if get(values, "toolkit", "enabled") is False:
        args.not_applicable("the NVIDIA Container Toolkit is preinstalled on the nodes (toolkit.enabled: false); "
                            "its configuration belongs to the node image")
    if _env_value(get(values, "toolkit", "env"), _ENVVAR_UNPRIVILEGED) != "false":
        report(f"toolkit.env does not set {_ENVVAR_UNPRIVILEGED}=false: an unprivileged container that sets "
               "NVIDIA_VISIBLE_DEVICES=all (as CUDA base images do) sees every GPU of its node.", None)
    strategy = _env_value(get(values, "devicePlugin", "env"), "DEVICE_LIST_STRATEGY")
    cdi = get(values, "cdi", "enabled") is not False
    if strategy == "volume-mounts":
        if _env_value(get(values, "toolkit", "env"), _AS_VOLUME_MOUNTS) != "true":
            report(f"devicePlugin uses volume-mounts but toolkit.env does not set {_AS_VOLUME_MOUNTS}=true.", None)
    elif strategy not in (None, "cdi-annotations", "cdi-cri", "cdi-annotations,cdi-cri") or not cdi:
        report("The device plugin hands GPUs to containers by environment variable: set cdi.enabled: true "
               "(or devicePlugin.env DEVICE_LIST_STRATEGY=volume-mounts).", None)


def _pod_policy(name, description, remediation, check_id, fw, *, pod_check=None, container_check=None):
    return ResourceValidationPolicy(
        name=name, description=description, validate=_pods(pod_check, container_check), enforcement_level=MANDATORY,
        severity=HIGH, framework=fw, remediation_steps=remediation, config_schema=exemptions_schema(check_id),
    )


def _pss(name, check_id, level, description, remediation, **checks):
    return _pod_policy(name, description, remediation, check_id, pss(level), **checks)


POLICIES = (
    _pss("kubernetes-pod-no-privileged", "privileged", "baseline", "No privileged containers.",
         "Remove securityContext.privileged.", container_check=_privileged),
    _pss("kubernetes-pod-no-host-namespaces", "host-namespaces", "baseline",
         "Pods do not share the host's network, PID or IPC namespace.", "Remove hostNetwork/hostPID/hostIPC.",
         pod_check=_host_namespaces),
    _pss("kubernetes-pod-no-host-path", "host-path", "baseline", "Pods mount no hostPath volumes.",
         "Use a PersistentVolumeClaim, ConfigMap or emptyDir instead.", pod_check=_host_path),
    _pss("kubernetes-pod-no-privilege-escalation", "privilege-escalation", "restricted",
         "Containers set allowPrivilegeEscalation: false.", "Set securityContext.allowPrivilegeEscalation: false.",
         container_check=_privilege_escalation),
    _pss("kubernetes-pod-run-as-non-root", "run-as-non-root", "restricted", "Containers run as non-root.",
         "Set securityContext.runAsNonRoot: true (pod or container) and a non-zero runAsUser.",
         container_check=_run_as_non_root),
    _pss("kubernetes-pod-drop-capabilities", "capabilities", "restricted",
         "Containers drop ALL capabilities and add none but NET_BIND_SERVICE.",
         "Set securityContext.capabilities.drop: [ALL].", container_check=_capabilities),
    _pss("kubernetes-pod-seccomp", "seccomp", "restricted",
         "Pods use the RuntimeDefault (or Localhost) seccomp profile.",
         "Set securityContext.seccompProfile.type: RuntimeDefault.", container_check=_seccomp),
    _pod_policy("kubernetes-pod-no-gpu-device-selection", "Pods do not choose GPUs themselves: no "
                "NVIDIA_VISIBLE_DEVICES / NVIDIA_DRIVER_CAPABILITIES (or other NVIDIA runtime variables) and no "
                "cdi.k8s.io/ annotations.",
                "Request GPUs with resources.limits nvidia.com/gpu and let the device plugin choose them; "
                "remove the variables and annotations.", "nvidia-env",
                framework("NVIDIA Container Toolkit", "1.17", "accept-nvidia-visible-devices-envvar-when-unprivileged"),
                pod_check=_cdi_annotations, container_check=_nvidia_env),
    ResourceValidationPolicy(
        name="kubernetes-gpu-operator-device-isolation",
        description="The GPU Operator keeps unprivileged containers from selecting GPUs by environment variable "
                    "(toolkit ignores NVIDIA_VISIBLE_DEVICES; devices handed over by CDI or volume mounts).",
        validate=_gpu_operator_isolation, enforcement_level=MANDATORY, severity=HIGH,
        framework=framework("NVIDIA Container Toolkit", "1.17", "accept-nvidia-visible-devices-envvar-when-unprivileged"),
        remediation_steps=f"Set toolkit.env {_ENVVAR_UNPRIVILEGED}=false and keep cdi.enabled: true (GpuOperator "
                          "does both where the operator manages the toolkit).",
    ),
    ResourceValidationPolicy(
        name="kubernetes-gpu-workload-queue-label",
        description=f"Workloads that request GPUs outside the platform's namespaces carry the {QUEUE_LABEL} label.",
        validate=_queue_label, enforcement_level=ADVISORY, severity=MEDIUM, framework=platform("gpu-fair-sharing"),
        remediation_steps=f"Label the workload (or its pod template) {QUEUE_LABEL}: <the tenant's LocalQueue>.",
    ),
    ResourceValidationPolicy(
        name="kubernetes-pod-no-critical-priority",
        description="Pods outside the platform's namespaces do not use the system-node-critical or "
                    "system-cluster-critical priority classes.",
        validate=_critical_priority, enforcement_level=MANDATORY, severity=HIGH, framework=platform("tenant-isolation"),
        remediation_steps="Remove priorityClassName, or use a tenant priority class (tenants also get a zero-pod "
                          "quota at these classes).",
    ),
    ResourceValidationPolicy(
        name="kubernetes-pod-tenant-tolerations",
        description="Pods outside the platform's namespaces tolerate the GPU taint only when they request GPUs, and "
                    "never every taint or the system pool's (CriticalAddonsOnly).",
        validate=_tolerations, enforcement_level=MANDATORY, severity=HIGH, framework=platform("tenant-isolation"),
        remediation_steps="Request nvidia.com/gpu in resources.limits, or drop the toleration (Kueue adds the GPU "
                          "flavor's tolerations to admitted GPU workloads).",
    ),
    ResourceValidationPolicy(
        name="kubernetes-networkpolicy-tenant-egress",
        description="NetworkPolicies outside the platform's namespaces open egress only to their own namespace's pods "
                    "or to public addresses (no namespaceSelector; private, link-local and metadata ranges excepted).",
        validate=_tenant_egress, enforcement_level=MANDATORY, severity=HIGH, framework=platform("tenant-isolation"),
        remediation_steps="Name the peers of every egress rule; for the internet use ipBlock 0.0.0.0/0 with except "
                          + ", ".join(INTERNAL_CIDRS[:6]) + ".",
    ),
    ResourceValidationPolicy(
        name="kubernetes-service-no-external-redirect",
        description="Services outside the platform's namespaces are not ExternalName and set no externalIPs.",
        validate=_service_hijack, enforcement_level=MANDATORY, severity=HIGH,
        framework=framework("Kubernetes CVE", "CVE-2020-8554", "externalIPs and ExternalName redirection"),
        remediation_steps="Use a ClusterIP Service selecting your own pods; reach other services by their own name.",
    ),
    ResourceValidationPolicy(
        name="kubernetes-image-pinned", description="Images are pinned to a tag other than latest, or a digest.",
        validate=_image_pinned, enforcement_level=MANDATORY, severity=MEDIUM, framework=platform("supply-chain"),
        remediation_steps="Reference images as repo:version or repo@sha256:digest.",
    ),
    ResourceValidationPolicy(
        name="kubernetes-image-allowed-registry", description="Images come only from allowed registries (configurable).",
        validate=_image_registry, enforcement_level=MANDATORY, severity=MEDIUM, framework=cis_eks("5.1.4"),
        config_schema=PolicyConfigSchema(properties={"allowedRegistries": {
            "type": "array", "minItems": 1, "uniqueItems": True, "default": DEFAULT_REGISTRIES,
            "items": {"type": "string", "pattern": REGISTRY_PATTERN},
            "description": "Registry host patterns (globs: *.gcr.io); at least one."}}),
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
        name="kubernetes-rolebinding-no-cluster-admin", description="No RoleBinding or ClusterRoleBinding (or patch "
        "of one) grants cluster-admin.", validate=_no_cluster_admin, enforcement_level=MANDATORY, severity=HIGH,
        framework=cis_eks("4.1.1"), remediation_steps="Bind tenants to the built-in admin/view ClusterRoles in their "
                                                     "namespace.",
    ),
    ResourceValidationPolicy(
        name="kubernetes-helm-chart-pinned", description="Helm charts (helm.sh/v3 Release, helm.sh/v4 Chart) are "
        "pinned to an exact version.",
        validate=_chart_pinned, enforcement_level=MANDATORY, severity=MEDIUM, framework=platform("supply-chain"),
        remediation_steps="Pin the chart in components/addons/versions.py.",
    ),
    ResourceValidationPolicy(
        name="kubernetes-namespace-pod-security", description="Tenant namespaces enforce Pod Security 'restricted'.",
        validate=_tenant_pod_security, enforcement_level=MANDATORY, severity=HIGH, framework=pss("restricted"),
        remediation_steps="Label the namespace pod-security.kubernetes.io/enforce: restricted (Tenant does).",
    ),
)
