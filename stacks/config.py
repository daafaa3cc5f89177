"""The typed stack config: one schema for every cloud, loaded from `ai-platform:*` keys.

Every problem is reported at once, each line naming the file and the key path, before
any resource is registered.
"""

from __future__ import annotations

import difflib
import json
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal

import pulumi
from pydantic import BaseModel, Field, ValidationError

from components.clusters.base import ClusterSpec, GpuPoolError, GpuPoolSpec, NetworkSpec, resolve_gpu_pool
from components.clusters.eks import GPU_TAINT_VALUE as EKS_GPU_TAINT_VALUE
from components.clusters.eks import AccessEntrySpec
from components.spec import DnsLabel, Spec
from components.tenancy import TenantSpec

NAMESPACE = "ai-platform"
Cloud = Literal["aws", "gcp", "azure", "existing"]
# Clouds whose cluster component exists in this release.
IMPLEMENTED_CLOUDS = ("aws",)
_GPU_TAINT_VALUES = {"aws": EKS_GPU_TAINT_VALUE}


class ClusterConfig(ClusterSpec):
    """One cluster: the shared cluster settings plus where and how it runs."""

    name: DnsLabel
    """Cluster name in this stack; prefixes every resource of the cluster."""
    cloud: Cloud
    """Where it runs: aws, gcp, azure or existing."""
    role: Literal["primary", "burst"] = "primary"
    """primary runs the platform; burst takes overflow batch work. @default primary"""
    region: str | None = None
    """Cloud region. Required for aws."""
    access_entries: tuple[AccessEntrySpec, ...] = ()
    """aws: IAM principals with cluster access. @default none"""
    log_retention_days: int = Field(default=90, ge=1, le=3653)
    """Control-plane log retention. @default 90"""
    protect: bool | None = None
    """Protect the cluster and its key from deletion. @default true in prod"""


class ClusterAutoscalerAddon(Spec):
    """The cluster-autoscaler chart (EKS)."""

    enabled: bool = True
    """Install the cluster-autoscaler chart where the cloud has no native autoscaler. @default true"""


class AddonsConfig(Spec):
    cluster_autoscaler: ClusterAutoscalerAddon = ClusterAutoscalerAddon()
    """cluster-autoscaler chart settings. @default enabled"""


class BurstingConfig(Spec):
    enabled: bool = False
    """Overflow batch work to the `role: burst` cluster. @default false"""
    manager: Literal["dedicated", "primary"] = "dedicated"
    """Where the MultiKueue manager runs. @default dedicated"""


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

    @property
    def primary(self) -> ClusterConfig:
        return next(c for c in self.clusters if c.role == "primary")

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


KEYS = tuple(StackConfig.model_fields)
_STRUCTURED = {"clusters", "tenants", "addons", "bursting"}


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


def raw_from_pulumi_config() -> dict[str, Any]:
    """Every `ai-platform:*` key the engine passed in, structured values decoded."""
    from pulumi.runtime import config as runtime_config

    keys = set(runtime_config.CONFIG.get()) | set(runtime_config.get_config_env())
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
    return parse(raw_from_pulumi_config())


def parse(raw: Mapping[str, Any]) -> StackConfig:
    problems = [(_path((key,)), _unknown_message(key, KEYS)) for key in raw if key not in KEYS]
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
    if problems:
        raise ConfigError(_dedupe(problems))
    assert config is not None
    return config


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
        if isinstance(cloud, str) and cloud not in IMPLEMENTED_CLOUDS and cloud in typing.get_args(Cloud):
            problems.append(
                (_path((*at, "cloud")), f"{cloud!r} clusters are not available in this release (available: "
                 f"{', '.join(IMPLEMENTED_CLOUDS)})")
            )
        if cloud == "aws" and not cluster.get("region"):
            problems.append((_path((*at, "region")), "required for aws clusters"))
        if cloud != "aws" and cluster.get("accessEntries"):
            problems.append((_path((*at, "accessEntries")), "only applies to aws clusters"))
        if cluster.get("role") == "burst":
            problems.append((_path((*at, "role")), "burst clusters are not available in this release"))
        pools = _items(cluster.get("gpuPools"))
        problems += _duplicates(pools, (*at, "gpuPools"), "GPU pool")
        for j, pool in pools:
            if pool.get("name") == "system":
                problems.append((_path((*at, "gpuPools", j, "name")), "'system' is reserved for the system pool"))
        entries = _items(cluster.get("accessEntries"))
        seen_arns: set[str] = set()
        for j, entry in entries:
            arn = entry.get("principalArn")
            if isinstance(arn, str):
                if arn in seen_arns:
                    problems.append((_path((*at, "accessEntries", j, "principalArn")), f"duplicate principal {arn!r}"))
                seen_arns.add(arn)
    bursting = raw.get("bursting")
    if isinstance(bursting, dict) and bursting.get("enabled") is True:
        problems.append((_path(("bursting", "enabled")), "cloud bursting is not available in this release"))
    return problems


def _pool_checks(raw: Mapping[str, Any]) -> list[tuple[str, str]]:
    """GPU model and count against the machine type catalog of each cloud, for every
    pool that is itself well-formed (so this runs even when other keys are invalid)."""
    problems = []
    for i, cluster in _items(raw.get("clusters")):
        taint = _GPU_TAINT_VALUES.get(cluster.get("cloud"))
        if taint is None:
            continue
        for j, pool in _items(cluster.get("gpuPools")):
            try:
                spec = GpuPoolSpec.model_validate(pool)
                resolve_gpu_pool(cluster["cloud"], spec, taint)
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
    message = message[0].lower() + message[1:] if message else message
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
