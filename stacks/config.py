"""The typed stack config: one schema for every cloud, loaded from `ai-platform:*` keys.

Every problem is reported at once, each line naming the file and the key path, before
any resource is registered. Validation goes as far as building each cluster's
component args, so a cloud's own rules (name lengths, regions, pool names) are checked
in exactly one place: the component's args model.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import pulumi
import yaml
from pydantic import BaseModel, Field, ValidationError
from pydantic.alias_generators import to_camel

from components.clusters import CLUSTER_TYPES
from components.clusters.base import (
    ClusterSpec,
    GpuPoolError,
    GpuPoolSpec,
    NetworkSpec,
    NodePoolSpec,
    resolve_gpu_pool,
)
from components.clusters.eks import AccessEntrySpec
from components.clusters.gke import MANAGER_MIN_PREFIX as GKE_MANAGER_MIN_PREFIX
from components.spec import DnsLabel, Quantity, Spec
from components.tenancy import TenantSpec

NAMESPACE = "ai-platform"
# What the offline plan puts where a `secure:` value is (it has no key to decrypt it).
SECRET_PLACEHOLDER = "[secret]"
Cloud = Literal["aws", "gcp", "azure", "existing"]
MANAGED = ("aws", "gcp", "azure")
# The only retention periods CloudWatch Logs accepts (PutRetentionPolicy, retentionInDays): any
# other number plans fine and fails at `pulumi up`.
CLOUDWATCH_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192,
                             2557, 2922, 3288, 3653)
# Keys that only mean something on some clouds (config key -> clouds).
CLOUD_KEYS: dict[str, tuple[str, ...]] = {
    "region": MANAGED,
    "endpoint": MANAGED,
    "network": MANAGED,
    "systemPool": MANAGED,
    "cpuPools": MANAGED,
    "protect": MANAGED,
    "accessEntries": ("aws",),
    "logRetentionDays": ("aws", "azure"),
    "project": ("gcp",),
    "releaseChannel": ("gcp",),
    "resourceGroup": ("azure",),
    "networkPolicy": ("azure",),
    "adminGroupObjectIds": ("azure",),
    "upgradeChannel": ("azure",),
    "skuTier": ("azure",),
    "kubeconfig": ("existing",),
    "kubeconfigPath": ("existing",),
    "context": ("existing",),
}
MANAGER_NAME = "manager"
REQUIRED_KEYS: dict[str, tuple[str, ...]] = {"aws": ("region",), "gcp": ("region", "project"), "azure": ("region",)}


class ClusterConfig(ClusterSpec):
    """One cluster: the shared cluster settings plus where and how it runs."""

    name: DnsLabel
    """Cluster name in this stack; prefixes every resource of the cluster."""
    cloud: Cloud
    """Where it runs: aws, gcp, azure or existing. Changing it is the whole migration."""
    role: Literal["primary", "burst"] = "primary"
    """primary runs the platform; burst takes overflow batch work. @default primary"""
    region: str | None = None
    """Region (Azure: location). Required on aws, gcp and azure."""
    protect: bool | None = None
    """Protect the cluster and its key from deletion. @default true in prod"""
    access_entries: tuple[AccessEntrySpec, ...] = ()
    """aws: IAM principals with cluster access. @default none"""
    log_retention_days: int | None = Field(default=None, ge=1, le=3653)
    """aws, azure: control-plane / audit log retention in days (aws: a period CloudWatch offers, 1, 3, 5, 7, 14,
    30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653). @default 90"""
    project: str | None = None
    """gcp: project id. Required on gcp."""
    release_channel: Literal["RAPID", "REGULAR", "STABLE"] | None = None
    """gcp: GKE release channel. @default REGULAR"""
    resource_group: str | None = None
    """azure: existing resource group. @default a new `<cluster>-rg`"""
    network_policy: Literal["azure", "cilium"] | None = None
    """azure: NetworkPolicy engine. @default cilium"""
    admin_group_object_ids: tuple[str, ...] = ()
    """azure: Entra ID groups that administer the cluster. @default none"""
    upgrade_channel: Literal["patch", "stable", "rapid", "node-image"] | None = None
    """azure: auto-upgrade channel. @default stable"""
    sku_tier: Literal["Free", "Standard", "Premium"] | None = None
    """azure: control-plane tier. @default Standard in prod, Free otherwise"""
    kubeconfig: str | None = None
    """existing: kubeconfig content; set it with `pulumi config set --secret --path`."""
    kubeconfig_path: str | None = None
    """existing: path of a kubeconfig file, relative to the project."""
    context: str | None = None
    """existing: kubeconfig context. @default its current context"""


class Toggle(Spec):
    enabled: bool = True
    """Install it. @default true"""


class ClusterAutoscalerAddon(Toggle):
    """cluster-autoscaler chart where the cloud has no native autoscaler (EKS)."""


class GpuOperatorAddon(Toggle):
    """NVIDIA GPU Operator: device plugin, DCGM exporter, GPU sharing."""


class ObservabilityAddon(Toggle):
    """kube-prometheus-stack with GPU dashboards and alerts."""

    retention: str = Field(default="15d", pattern=r"^[0-9]+(ms|s|m|h|d|w|y)$")
    """Prometheus retention. @default 15d"""
    storage_size: Quantity = "50Gi"
    """Prometheus volume size. @default 50Gi"""


class MeshAddon(Toggle):
    """Istio with STRICT mTLS and per-tenant AuthorizationPolicies."""


class CertManagerAddon(Toggle):
    """cert-manager (needed by serving)."""


class ServingAddon(Toggle):
    """KServe model serving."""

    mode: Literal["knative", "standard"] = "knative"
    """knative (scale to zero, canary splits; needs mesh) or standard. @default knative"""
    example_inference_service: bool = False
    """An example InferenceService in every tenant namespace. @default false"""


class KueueAddon(Toggle):
    """Kueue GPU quotas and fair sharing."""


class AddonsConfig(Spec):
    cluster_autoscaler: ClusterAutoscalerAddon = ClusterAutoscalerAddon()
    """@default enabled"""
    gpu_operator: GpuOperatorAddon = GpuOperatorAddon()
    """@default enabled"""
    observability: ObservabilityAddon = ObservabilityAddon()
    """@default enabled, 15d retention, 50Gi"""
    mesh: MeshAddon = MeshAddon()
    """@default enabled"""
    cert_manager: CertManagerAddon = CertManagerAddon()
    """@default enabled"""
    serving: ServingAddon = ServingAddon()
    """@default enabled, knative"""
    kueue: KueueAddon = KueueAddon()
    """@default enabled"""


# add-on -> (the add-ons it needs, why)
ADDON_NEEDS: dict[str, tuple[tuple[str, str], ...]] = {
    "serving": (("certManager", "KServe's webhooks need cert-manager certificates"),),
}


class BurstingConfig(Spec):
    enabled: bool = False
    """Overflow batch work to the `role: burst` cluster(s) with Kueue MultiKueue. @default false"""
    manager: Literal["dedicated", "primary"] = "dedicated"
    """dedicated: a small CPU-only manager cluster on the primary's cloud, with primary and burst as workers;
    primary: the primary is the manager and tenants get a `burst` LocalQueue. @default dedicated"""
    manager_pool: NodePoolSpec | None = None
    """Nodes of the dedicated manager. @default the cloud's system machine type, 1 to 2 nodes (2 to 3 in prod)"""
    worker_token_generation: int = Field(default=1, ge=1, le=1000000)
    """Generation of the workers' MultiKueue tokens: raise it to rotate them (new tokens go to the manager,
    then the old ones are deleted and stop working). @default 1"""


class StackConfig(Spec):
    """Everything under the `ai-platform:` namespace of a stack file."""

    environment: Literal["dev", "staging", "prod"]
    """dev | staging | prod: picks secure-by-default sizes and protection."""
    clusters: tuple[ClusterConfig, ...] = Field(min_length=1)
    """The clusters; exactly one has role primary."""
    tenants: tuple[TenantSpec, ...] = ()
    """Tenants, created on every cluster. @default none"""
    addons: AddonsConfig = AddonsConfig()
    """Add-on toggles. @default all enabled"""
    bursting: BurstingConfig = BurstingConfig()
    """Cloud bursting. @default off"""
    grafana_admin_password: str | None = None
    """Grafana admin password; set with `pulumi config set --secret grafanaAdminPassword`. @default generated"""

    @property
    def replicas(self) -> int:
        """Replicas of platform controllers: 2 in prod for availability, 1 elsewhere."""
        return 2 if self.environment == "prod" else 1

    @property
    def primary(self) -> ClusterConfig:
        return next(c for c in self.clusters if c.role == "primary")

    @property
    def bursts(self) -> tuple[ClusterConfig, ...]:
        return tuple(c for c in self.clusters if c.role == "burst")

    def manager(self, default_machine: str) -> ClusterConfig:
        """The dedicated MultiKueue manager: small, CPU-only, on the primary's cloud and region; only its system
        pool (tenants run nothing there)."""
        prod = self.environment == "prod"
        pool = self.bursting.manager_pool or NodePoolSpec(
            machine_type=default_machine, min=2 if prod else 1, max=3 if prod else 2, disk_size_gb=50)
        return self.primary.model_copy(
            update={"name": MANAGER_NAME, "role": "primary", "gpu_pools": (), "cpu_pools": (), "system_pool": pool}
        )

    def protect(self, cluster: ClusterConfig) -> bool:
        return self.environment == "prod" if cluster.protect is None else cluster.protect

    def network(self, cluster: ClusterConfig) -> NetworkSpec:
        prod = self.environment == "prod"
        return cluster.network.model_copy(
            update={
                "zones": cluster.network.zones or (3 if prod else 2),
                "nat_gateways": cluster.network.nat_gateways or ("per-zone" if prod else "single"),
            }
        )


KEYS = tuple(f.alias or n for n, f in StackConfig.model_fields.items())
_STRUCTURED = {"clusters", "tenants", "addons", "bursting"}
SECRET_KEYS = {"grafanaAdminPassword"}


class ConfigError(Exception):
    """Invalid stack config: one line per problem, each naming the key path."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        super().__init__("\n".join(f"{path}: {msg}" for path, msg in problems))

    def lines(self, source: str) -> list[str]:
        return [f"{source}: {path}: {msg}" for path, msg in self.problems]


class StackConfigError(pulumi.RunError):
    """Raised from the Pulumi program: the engine prints it without a traceback."""

    def __init__(self, error: ConfigError, source: str):
        self.error = error
        self.source = source
        self.lines = error.lines(source)
        super().__init__(
            f"invalid stack config ({len(self.lines)} problem(s)); nothing was deployed:\n" + "\n".join(self.lines)
        )


# -- loading -----------------------------------------------------------------------------


def config_keys() -> set[str]:
    """Every `namespace:key` the engine passed in."""
    from pulumi.runtime import config as runtime_config

    return set(runtime_config.CONFIG.get()) | set(runtime_config.get_config_env())


def misspelt_namespaces(keys: typing.Iterable[str]) -> list[tuple[str, str]]:
    """Keys in a namespace that is almost ours (`ai-platfrom:tenants`): Pulumi would pass them
    on and the program would never read them, so the setting would silently not apply."""
    problems = []
    for full in sorted(keys):
        ns, _, key = full.partition(":")
        if ns != NAMESPACE and key and difflib.SequenceMatcher(None, ns, NAMESPACE).ratio() >= 0.75:
            problems.append((full, f"unknown config namespace {ns!r}; did you mean '{NAMESPACE}:{key}'?"))
    return problems


def raw_from_pulumi_config() -> dict[str, Any]:
    """Every `ai-platform:*` key the engine passed in, structured values decoded."""
    keys = config_keys()
    cfg = pulumi.Config(NAMESPACE)
    raw: dict[str, Any] = {}
    for full in sorted(keys):
        ns, _, key = full.partition(":")
        if ns != NAMESPACE or not key:
            continue
        value = cfg.get(key)
        if key in _STRUCTURED and isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                pass  # reported as a type error by the schema
        raw[key] = value
    return raw


def load() -> StackConfig:
    """Load and validate the running stack's config; raises ConfigError."""
    from pulumi.runtime.config import is_config_secret

    raw = raw_from_pulumi_config()
    secret = {k for k in raw if is_config_secret(f"{NAMESPACE}:{k}")}
    return parse(raw, project=pulumi.get_project(), stack=pulumi.get_stack(), secret_keys=secret,
                 foreign_keys=config_keys())


def parse(
    raw: Mapping[str, Any], project: str = "ai-platform", stack: str = "dev", plain_secrets: set[str] | None = None,
    secret_keys: set[str] | None = None, foreign_keys: typing.Iterable[str] = (),
) -> StackConfig:
    """Validate raw config. `secret_keys`: keys stored encrypted (None: all of them, for
    callers that validate values only); `plain_secrets` (older form): secret keys that were
    stored in clear text. `foreign_keys`: every `namespace:key` of the stack file."""
    if plain_secrets is None:
        plain_secrets = set() if secret_keys is None else {k for k in SECRET_KEYS if k in raw and k not in secret_keys}
    problems = misspelt_namespaces(foreign_keys)
    problems += [(_path((key,)), _unknown_message(key, KEYS)) for key in raw if key not in KEYS]
    problems += [
        (_path((key,)), f"must be stored encrypted: pulumi config set --secret {key} ...") for key in sorted(plain_secrets)
    ]
    known = {k: v for k, v in raw.items() if k in KEYS}
    try:
        config = StackConfig.model_validate(known)
    except ValidationError as exc:
        errors = exc.errors()
        # "too short after validation" only repeats that an item inside was invalid.
        errors = [
            e for e in errors
            if e["type"] != "too_short" or not any(o is not e and o["loc"][: len(e["loc"])] == e["loc"] for o in errors)
        ]
        problems += [_describe(err) for err in errors]
        config = None
    problems += _cross_checks(known)
    problems += _pool_checks(known)
    problems += _kubeconfig_checks(known, secret_keys)
    if config is not None and not problems:
        for i, cluster in enumerate(config.clusters):
            try:
                cluster_args(config, cluster, project, stack)
            except ValidationError as exc:
                problems += [_describe(_relocate(err, i)) for err in exc.errors()]
            except ClusterArgsError as exc:
                problems.append((_path(("clusters", i, exc.key)), str(exc)))
        problems += _capacity_checks(config)
    if problems:
        raise ConfigError(_dedupe(problems))
    assert config is not None
    return config


# -- from config to component args ----------------------------------------------------------


class ClusterArgsError(ValueError):
    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key = key


# Component args fields whose config key has another name.
_ARG_KEYS = {"clusterName": "name"}


def _relocate(err: dict, index: int) -> dict:
    loc = tuple(_ARG_KEYS.get(to_camel(p), to_camel(p)) if isinstance(p, str) else p for p in err["loc"])
    return {**err, "loc": ("clusters", index, *loc)}


def physical_name(project: str, stack: str, cluster: str) -> str:
    """The cloud-side cluster name: `<project>-<stack>-<cluster>`, shortened with a hash
    to GKE's 40 characters when needed (deterministic, so it never changes)."""
    # Stack names may hold `_` and `.`, which no cloud takes in a cluster name.
    full = re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "-", f"{project}-{stack}-{cluster}".lower())).strip("-")
    if len(full) <= 40:
        return full
    return f"{full[:33].rstrip('-')}-{hashlib.sha256(full.encode()).hexdigest()[:6]}"


def read_kubeconfig(cluster: ClusterConfig) -> str:
    if cluster.kubeconfig:
        return cluster.kubeconfig
    path = Path(cluster.kubeconfig_path or "")
    try:
        return path.read_text()
    except OSError as exc:
        raise ClusterArgsError("kubeconfigPath", f"cannot read {str(path)!r}: {exc.strerror}") from None


def cluster_args(cfg: StackConfig, cluster: ClusterConfig, project: str, stack: str):
    """The args of the cluster's component, built from config (raises ValidationError or
    ClusterArgsError, both naming keys)."""
    _, args_type = CLUSTER_TYPES[cluster.cloud]
    common = {
        "kubernetes_version": cluster.kubernetes_version,
        "gpu_pools": cluster.gpu_pools,
        "cpu_pools": cluster.cpu_pools,
        "gpu_driver": "gpu-operator" if cfg.addons.gpu_operator.enabled else "cloud",
        "tags": {"ai-platform:environment": cfg.environment, **cluster.tags},
    }
    if cluster.cloud == "existing":
        return args_type(**common, kubeconfig=read_kubeconfig(cluster), context=cluster.context)
    prod = cfg.environment == "prod"
    common.update(
        cluster_name=physical_name(project, stack, cluster.name),
        region=cluster.region,
        network=cfg.network(cluster),
        endpoint=cluster.endpoint,
        system_pool=cluster.system_pool,
        protect=cfg.protect(cluster),
    )
    retention = {"log_retention_days": cluster.log_retention_days} if cluster.log_retention_days else {}
    if cluster.cloud == "aws":
        return args_type(**common, **retention, access_entries=cluster.access_entries)
    if cluster.cloud == "gcp":
        return args_type(**common, project=cluster.project, release_channel=cluster.release_channel or "REGULAR")
    return args_type(
        **common,
        **retention,
        resource_group=cluster.resource_group,
        network_policy=cluster.network_policy or "cilium",
        admin_group_object_ids=cluster.admin_group_object_ids,
        upgrade_channel=cluster.upgrade_channel or "stable",
        sku_tier=cluster.sku_tier or ("Standard" if prod else "Free"),
    )


# -- cross-field checks on the raw tree (they run even when other parts are invalid) ----


def _items(value: Any) -> list[tuple[int, dict]]:
    return [(i, v) for i, v in enumerate(value) if isinstance(v, dict)] if isinstance(value, list) else []


def _duplicates(items: list[tuple[int, dict]], base: tuple, what: str) -> list[tuple[str, str]]:
    seen: dict[str, int] = {}
    out = []
    for i, item in items:
        name = item.get("name")
        if not isinstance(name, str):
            continue
        if name in seen:
            out.append((_path((*base, i, "name")), f"duplicate {what} name {name!r} (first at index {seen[name]})"))
        else:
            seen[name] = i
    return out


def _cross_checks(raw: Mapping[str, Any]) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    clusters = _items(raw.get("clusters"))
    problems += _duplicates(clusters, ("clusters",), "cluster")
    problems += _duplicates(_items(raw.get("tenants")), ("tenants",), "tenant")
    if clusters:
        roles = [c.get("role", "primary") for _, c in clusters]
        if roles.count("primary") != 1:
            problems.append(
                (_path(("clusters",)), f"exactly one cluster must have role primary (found {roles.count('primary')})")
            )
    for i, cluster in clusters:
        cloud = cluster.get("cloud")
        at = ("clusters", i)
        if cloud in typing.get_args(Cloud):
            for key, clouds in CLOUD_KEYS.items():
                if key in cluster and cloud not in clouds:
                    problems.append((_path((*at, key)), f"only applies to {' and '.join(clouds)} clusters"))
            for key in REQUIRED_KEYS.get(cloud, ()):
                if not cluster.get(key):
                    problems.append((_path((*at, key)), f"required for {cloud} clusters"))
            retention = cluster.get("logRetentionDays")
            if cloud == "aws" and type(retention) is int and retention not in CLOUDWATCH_RETENTION_DAYS:
                problems.append((_path((*at, "logRetentionDays")),
                                 f"CloudWatch keeps logs for one of {', '.join(map(str, CLOUDWATCH_RETENTION_DAYS))} "
                                 f"days, not {retention}"))
            if cloud == "existing" and bool(cluster.get("kubeconfig")) == bool(cluster.get("kubeconfigPath")):
                problems.append((_path((*at, "kubeconfig")), "set exactly one of kubeconfig or kubeconfigPath"))
        if cluster.get("role") == "burst" and not _bursting_enabled(raw):
            problems.append((_path((*at, "role")), "a burst cluster needs bursting.enabled: true"))
        if cluster.get("role") == "burst":
            for j, pool in _items(cluster.get("gpuPools")):
                if pool.get("min", 0) != 0:
                    problems.append((_path((*at, "gpuPools", j, "min")),
                                     "must be 0 on a burst cluster: it costs nothing while idle"))
        system = cluster.get("systemPool")
        if isinstance(system, dict) and system.get("min") == 0:
            problems.append((_path((*at, "systemPool", "min")), "must be >= 1: platform add-ons run there"))
        pools = _items(cluster.get("gpuPools"))
        problems += _duplicates(pools, (*at, "gpuPools"), "GPU pool")
        cpu_pools = _items(cluster.get("cpuPools"))
        problems += _duplicates(cpu_pools, (*at, "cpuPools"), "CPU pool")
        gpu_names = {p.get("name") for _, p in pools if isinstance(p.get("name"), str)}
        for key, items in (("gpuPools", pools), ("cpuPools", cpu_pools)):
            for j, pool in items:
                if pool.get("name") == "system":
                    problems.append((_path((*at, key, j, "name")), "'system' is reserved for the system pool"))
                elif key == "cpuPools" and pool.get("name") in gpu_names:
                    problems.append((_path((*at, key, j, "name")), f"{pool['name']!r} is also a GPU pool's name"))
        entries = _items(cluster.get("accessEntries"))
        seen_arns: set[str] = set()
        for j, entry in entries:
            arn = entry.get("principalArn")
            if isinstance(arn, str):
                if arn in seen_arns:
                    problems.append((_path((*at, "accessEntries", j, "principalArn")), f"duplicate principal {arn!r}"))
                seen_arns.add(arn)
    addons = raw.get("addons") if isinstance(raw.get("addons"), dict) else {}

    def enabled(addon: str) -> bool:
        value = addons.get(addon)
        return not (isinstance(value, dict) and value.get("enabled") is False)

    for addon, needs in ADDON_NEEDS.items():
        for needed, why in needs:
            if enabled(addon) and not enabled(needed):
                problems.append((_path(("addons", addon, "enabled")), f"needs addons.{needed} ({why})"))
    serving = addons.get("serving") if isinstance(addons.get("serving"), dict) else {}
    if enabled("serving") and serving.get("mode", "knative") == "knative" and not enabled("mesh"):
        problems.append((_path(("addons", "serving", "mode")), "knative needs addons.mesh (Knative's ingress is Istio); "
                         "use mode: standard or enable the mesh"))
    if serving.get("exampleInferenceService") is True and not enabled("serving"):
        problems.append((_path(("addons", "serving", "exampleInferenceService")), "needs addons.serving"))
    problems += _bursting_checks(raw, clusters, enabled)
    return problems


def _bursting_enabled(raw: Mapping[str, Any]) -> bool:
    bursting = raw.get("bursting")
    return isinstance(bursting, dict) and bursting.get("enabled") is True


def _bursting_checks(raw: Mapping[str, Any], clusters: list[tuple[int, dict]], enabled) -> list[tuple[str, str]]:
    if not _bursting_enabled(raw):
        return []
    problems = []
    primary = next((c for _, c in clusters if c.get("role", "primary") == "primary"), {})
    bursts = [(i, c) for i, c in clusters if c.get("role") == "burst"]
    if not bursts:
        problems.append((_path(("bursting", "enabled")), "needs a cluster with role: burst"))
    for i, c in bursts:
        if c.get("cloud") and c.get("cloud") == primary.get("cloud"):
            problems.append((_path(("clusters", i, "cloud")),
                             f"a burst cluster must be on another provider than the primary ({c['cloud']})"))
        endpoint = c.get("endpoint") if isinstance(c.get("endpoint"), dict) else {}
        if c.get("cloud") in MANAGED and endpoint.get("public") is not True:
            problems.append((_path(("clusters", i, "endpoint", "public")),
                             "must be true on a burst cluster: the MultiKueue manager on another provider reaches its "
                             "API server over the internet (its NAT addresses are added to authorizedNetworks)"))
    if not enabled("kueue"):
        problems.append((_path(("bursting", "enabled")), "needs addons.kueue (MultiKueue dispatches the work)"))
    manager = raw["bursting"].get("manager", "dedicated")
    if manager == "dedicated" and primary.get("cloud") == "gcp":
        # The manager gets its own subnet and ranges inside the primary's VPC.
        cidr = (primary.get("network") or {}).get("cidr", "10.0.0.0/16") if isinstance(primary.get("network"), dict) \
            else "10.0.0.0/16"
        prefix = str(cidr).rpartition("/")[2]
        if prefix.isdigit() and int(prefix) > GKE_MANAGER_MIN_PREFIX:
            index = next(i for i, c in clusters if c is primary)
            problems.append((_path(("clusters", index, "network", "cidr")),
                             f"a dedicated MultiKueue manager shares this VPC and needs /{GKE_MANAGER_MIN_PREFIX} or "
                             f"larger (got {cidr})"))
    if manager == "dedicated":
        if primary.get("cloud") == "existing":
            problems.append((_path(("bursting", "manager")),
                             "dedicated needs a primary on a managed cloud to create the manager on; use primary"))
        for i, c in clusters:
            if c.get("name") == MANAGER_NAME:
                problems.append((_path(("clusters", i, "name")), f"{MANAGER_NAME!r} is the dedicated manager's name"))
    elif raw["bursting"].get("managerPool") is not None:
        problems.append((_path(("bursting", "managerPool")), "only applies to manager: dedicated"))
    return problems


def _capacity_checks(config: StackConfig) -> list[tuple[str, str]]:
    """Every tenant is guaranteed its `gpus` on every cluster: they must fit in each cluster
    (max nodes x `nvidia.com/gpu` units per node: slices with time-slicing or MIG)."""
    guaranteed = sum(t.gpus for t in config.tenants)
    problems = []
    for i, cluster in enumerate(config.clusters):
        driver = "gpu-operator" if config.addons.gpu_operator.enabled else "cloud"
        capacity = sum(resolve_gpu_pool(cluster.cloud, p, driver).capacity_devices for p in cluster.gpu_pools)
        if guaranteed and not cluster.gpu_pools:
            problems.append((_path(("clusters", i, "gpuPools")), f"tenants are guaranteed {guaranteed} GPUs, but "
                             f"cluster {cluster.name!r} has no GPU pool; add one (or set the tenants' gpus to 0)"))
        elif guaranteed > capacity:
            problems.append((_path(("tenants",)), f"tenants are guaranteed {guaranteed} GPUs in total, but cluster "
                             f"{cluster.name!r} has at most {capacity} (gpuPools max x GPUs per node x slices)"))
    return problems


_CREDENTIAL_KEYS = ("token", "client-key-data", "client-key", "password")


def _kubeconfig_checks(raw: Mapping[str, Any], secret_keys: set[str] | None) -> list[tuple[str, str]]:
    """An existing cluster's kubeconfig: its `context` must be in it, and credentials in an
    inline kubeconfig must be stored encrypted (as the Pulumi CLI's `--secret` does)."""
    problems = []
    for i, cluster in _items(raw.get("clusters")):
        if cluster.get("cloud") != "existing":
            continue
        inline = cluster.get("kubeconfig")
        text = inline if isinstance(inline, str) else None
        if text is None and isinstance(cluster.get("kubeconfigPath"), str):
            try:
                text = Path(cluster["kubeconfigPath"]).read_text()
            except OSError:
                continue  # reported when the args are built
        try:
            doc = yaml.safe_load(text) if text else None
        except yaml.YAMLError:
            doc = None
        if text and text != SECRET_PLACEHOLDER and not isinstance(doc, dict):
            problems.append((_path(("clusters", i, "kubeconfig" if inline else "kubeconfigPath")),
                             "is not a kubeconfig (YAML with clusters, contexts and users)"))
            continue
        if not isinstance(doc, dict):
            continue
        contexts = [c.get("name") for c in doc.get("contexts") or [] if isinstance(c, dict)]
        wanted = cluster.get("context") or doc.get("current-context")
        if isinstance(wanted, str) and wanted not in contexts:
            key = "context" if cluster.get("context") else ("kubeconfig" if inline else "kubeconfigPath")
            problems.append((_path(("clusters", i, key)), f"context {wanted!r} is not in the kubeconfig "
                             f"(it has: {', '.join(map(str, contexts)) or 'none'})"))
        users = [u.get("user") or {} for u in doc.get("users") or [] if isinstance(u, dict)]
        holds = any(isinstance(u, dict) and any(u.get(k) for k in _CREDENTIAL_KEYS) for u in users)
        if inline and holds and secret_keys is not None and "clusters" not in secret_keys:
            problems.append((_path(("clusters", i, "kubeconfig")), "holds credentials and must be stored encrypted: "
                             f"pulumi config set --secret --path 'clusters[{i}].kubeconfig' < kubeconfig"))
    return problems


def _gpu_driver(raw: Mapping[str, Any]) -> str:
    """"gpu-operator" when the GPU Operator add-on is on (the default)."""
    addons = raw.get("addons") if isinstance(raw.get("addons"), dict) else {}
    operator = addons.get("gpuOperator") if isinstance(addons.get("gpuOperator"), dict) else {}
    return "cloud" if operator.get("enabled") is False else "gpu-operator"


def _pool_checks(raw: Mapping[str, Any]) -> list[tuple[str, str]]:
    """GPU model and count against the machine type catalog of each cloud, for every
    pool that is itself well-formed (so this runs even when other keys are invalid)."""
    problems = []
    for i, cluster in _items(raw.get("clusters")):
        cloud = cluster.get("cloud")
        if not isinstance(cloud, str) or cloud not in CLUSTER_TYPES:
            continue  # reported by the schema
        for j, pool in _items(cluster.get("gpuPools")):
            try:
                spec = GpuPoolSpec.model_validate(pool)
                resolve_gpu_pool(cluster["cloud"], spec, _gpu_driver(raw))
            except ValidationError:
                continue  # already reported by the schema
            except GpuPoolError as exc:
                problems.append((_path(("clusters", i, "gpuPools", j, exc.key)), str(exc)))
    return problems


# -- error formatting --------------------------------------------------------------------


def _path(loc: tuple) -> str:
    out = f"{NAMESPACE}:{loc[0]}"
    for part in loc[1:]:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _unknown_message(key: str, known: typing.Iterable[str]) -> str:
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(sorted(known))}"
    return f"unknown key{hint}"


def _model_at(loc: tuple) -> type[BaseModel] | None:
    """The model class that holds the last element of `loc` (for key suggestions)."""
    current: Any = StackConfig
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = next((f for n, f in current.model_fields.items() if n == part or f.alias == part), None)
        if field is None:
            return None
        current = _unwrap(field.annotation)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(annotation: Any) -> Any:
    while True:
        origin = typing.get_origin(annotation)
        if origin in (tuple, list, typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None) and a is not Ellipsis]
            annotation = args[0] if args else annotation
            if origin in (typing.Union, types.UnionType) and len(args) == 1:
                continue
            if origin in (tuple, list):
                continue
        return annotation


def _describe(err: dict) -> tuple[str, str]:
    loc = tuple(err["loc"])
    kind = err["type"]
    if kind == "extra_forbidden":
        model = _model_at(loc)
        known = [f.alias or n for n, f in model.model_fields.items()] if model else []
        return _path(loc), _unknown_message(str(loc[-1]), known)
    if kind == "missing":
        return _path(loc), "required key is missing"
    message = err["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    # Model validators say "<key>: <problem>" to point at one of their fields.
    head, sep, rest = message.partition(": ")
    model = _model_at((*loc, "_"))
    if sep and model and any(head in (n, f.alias) for n, f in model.model_fields.items()):
        loc, message = (*loc, head), rest
    if message[:2].istitle():  # "Input should be" -> "input should be", but keep "AKS ..."
        message = message[0].lower() + message[1:]
    if kind not in ("value_error",) and "input" in err and not isinstance(err["input"], (dict, list)):
        message += f" (got {err['input']!r})"
    return _path(loc), message


def _dedupe(problems: list[tuple[str, str]]) -> list[tuple[str, str]]:
    seen, out = set(), []
    for p in problems:
        if p not in seen:
            seen.add(p)
            out.append(p)
    return out
