"""Checks what the program renders against upstream schemas:

- core Kubernetes objects against the official OpenAPI schemas of the cluster's
  Kubernetes version (kubernetes-validate, strict: unknown fields are errors);
- Helm values against the pinned chart's own default values (Helm silently ignores
  a misspelt key, so every key we set must exist there).
"""

from __future__ import annotations

import copy
import functools
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml
from kubernetes_validate import utils
from referencing import Registry, Resource

from components.addons import versions
from components.addons.common import merge

UPSTREAM_ENV = "AI_PLATFORM_UPSTREAM"
# libyaml's loader: the Istio CRD bundle alone takes seconds with the pure-Python one.
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
REPO = Path(__file__).resolve().parent.parent
# Not Kubernetes objects: providers, Helm releases and other Pulumi-side resources.
_NOT_OBJECTS = ("kubernetes:helm.sh/", "kubernetes:yaml", "kubernetes:kustomize")
HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
# Value maps a chart passes through verbatim (its defaults list only examples).
# Value keys that hold Kubernetes objects or maps (labels, selectors, resources), whose
# defaults are examples rather than the full set of keys.
FREEFORM_KEYS = frozenset({
    "nodeSelector", "annotations", "labels", "podLabels", "podAnnotations", "resources", "securityContext",
    "containerSecurityContext", "podSecurityContext", "affinity", "additionalLabels", "serviceAnnotations",
    "storageSpec", "matchLabels",
})
FREEFORM_VALUES: dict[str, set[str]] = {
    versions.CLUSTER_AUTOSCALER.name: {"extraArgs"},
    versions.ISTIOD.name: {"meshConfig", "global.proxy"},
}


@dataclass
class Finding:
    urn: str
    kind: str  # "kubernetes" | "helm-values"
    reason: str


def upstream_dir() -> Path | None:
    """Where the pinned upstream data lives: $AI_PLATFORM_UPSTREAM, ../shared/upstream
    next to the repo, or ./upstream (what `make upstream` downloads)."""
    candidates = [os.environ.get(UPSTREAM_ENV), REPO.parent / "shared" / "upstream", REPO / "upstream"]
    for c in candidates:
        if c and Path(c, "charts").is_dir():
            return Path(c)
    return None


def is_kubernetes_object(type_: str) -> bool:
    return type_.startswith("kubernetes:") and not type_.startswith(_NOT_OBJECTS)


def manifest(inputs: dict) -> dict:
    return {k: v for k, v in inputs.items() if not k.startswith("__")}


NO_SCHEMA = "no-schema"


def kubernetes_object(inputs: dict, kubernetes_version: str) -> str | None:
    """The validation error for one core object, None when it is valid, or NO_SCHEMA
    when it is not a core kind (a custom resource)."""
    data = manifest(inputs)
    try:
        validator = _core_validator(kubernetes_version, data.get("apiVersion", ""), data.get("kind", ""))
    except kubernetes_validate.SchemaNotFoundError:
        return NO_SCHEMA
    except kubernetes_validate.VersionNotSupportedError:
        return f"kubernetes-validate has no schemas for Kubernetes {kubernetes_version}"
    error = jsonschema.exceptions.best_match(validator.iter_errors(data))
    if error is None:
        return None
    where = ".".join(str(p) for p in error.path) or "(root)"
    return f"{where}: {error.message}"


@functools.cache
def _core_validator(kubernetes_version: str, api_version: str, kind: str) -> jsonschema.Validator:
    """What `kubernetes_validate.validate(..., strict=True)` builds for one kind, built once:
    it re-reads the multi-megabyte definitions file on every call, which took minutes for a
    plan with hundreds of tenants."""
    wanted = utils.major_minor(kubernetes_version)
    if wanted > utils.latest_version():
        raise kubernetes_validate.VersionNotSupportedError(version=wanted)
    version = [v for v in utils.all_versions() if utils.major_minor(v) <= wanted][-1]
    group = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    schema_dir = f"kubernetes-json-schema/v{version}-local-strict"
    try:
        schema = utils.schema_contents(f"{schema_dir}/{kind.lower()}-{group}.json", kubernetes_version)
    except FileNotFoundError:
        raise kubernetes_validate.SchemaNotFoundError(version=wanted, kind=kind, api_version=api_version) from None
    registry = Resource.from_contents(_core_definitions(schema_dir, kubernetes_version)) @ (
        Resource.from_contents(schema) @ Registry())
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)


@functools.cache
def _core_definitions(schema_dir: str, kubernetes_version: str) -> dict:
    return utils.schema_contents(f"{schema_dir}/_definitions.json", kubernetes_version)


def _values(path: Path) -> dict:
    # Some charts ship Go-template placeholders in values.yaml (`tag: {{ tag }}`).
    text = re.sub(r"\{\{[^}]*\}\}", "templated", path.read_text())
    return yaml.load(text, Loader=YAML_LOADER) or {}


def _with_subcharts(defaults: dict, source: Path) -> dict:
    """The parent's defaults plus each bundled subchart's, under its name or alias (the keys
    Helm passes down), when the chart source is there."""
    meta = source / "Chart.yaml"
    if not meta.is_file():
        return defaults
    out = dict(defaults)
    for dep in (yaml.load(meta.read_text(), Loader=YAML_LOADER) or {}).get("dependencies") or []:
        sub = source / "charts" / dep["name"] / "values.yaml"
        if sub.is_file():
            key = dep.get("alias") or dep["name"]
            own = out.get(key) if isinstance(out.get(key), dict) else {}
            out[key] = merge(_values(sub), own)
    return out


@functools.cache
def chart_defaults(upstream: Path, values_file: str, root: str | None = None) -> Any:
    path = upstream / "charts" / values_file
    if not path.is_file():
        return None
    doc = _values(path)
    doc = _with_subcharts(doc, _chart_source(upstream, values_file))
    return doc.get(root, {}) if root else doc


def _chart_source(upstream: Path, values_file: str) -> Path:
    """charts-src folder of the pinned chart whose values file this is."""
    chart = next((c for c in versions.CHARTS if c.values_file == values_file), None)
    return upstream / "charts-src" / (chart.source if chart else values_file.removesuffix(".values.yaml"))


# -- custom resources against the pinned CRDs ---------------------------------------------


@functools.cache
def crd_schemas(upstream: Path) -> dict[tuple[str, str, str], dict]:
    """(group, version, kind) -> openAPIV3Schema, for every CRD in the upstream data."""
    out = {}
    for path in sorted((upstream / "crds").glob("*.yaml")):
        for doc in yaml.load_all(path.read_text(), Loader=YAML_LOADER):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            spec = doc["spec"]
            for version in spec["versions"]:
                schema = (version.get("schema") or {}).get("openAPIV3Schema")
                if schema:
                    out[(spec["group"], version["name"], spec["names"]["kind"])] = schema
    return out


def strict_schema(schema: Any) -> Any:
    """An openAPIV3Schema as a JSON schema that, like the API server with strict field
    validation, rejects fields the CRD does not declare."""
    if isinstance(schema, list):
        return [strict_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict_schema(v) for k, v in schema.items() if k not in ("default",)}
    if isinstance(out.get("pattern"), str) and out["pattern"].startswith("^(?i)"):
        # Go's RE2 takes inline flags after the anchor; Python wants them first.
        out["pattern"] = "(?i)^" + out["pattern"][len("^(?i)"):]
    if out.pop("x-kubernetes-int-or-string", False):
        out.pop("type", None)
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if "properties" in out and "additionalProperties" not in out and not schema.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    return out


def custom_resource(inputs: dict, upstream: Path) -> str | None:
    """The validation error for one custom resource, or None when it is valid."""
    api_version, kind = inputs.get("apiVersion", ""), inputs.get("kind", "")
    group, _, version = api_version.rpartition("/")
    schema = crd_schemas(upstream).get((group, version, kind))
    if schema is None:
        return f"no pinned CRD for {api_version} {kind}"
    schema = copy.deepcopy(schema)
    # The API server handles these itself; some CRDs (Istio's) leave them out of the schema.
    props = schema.setdefault("properties", {})
    props.update({"apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"}})
    validator = jsonschema.Draft7Validator(strict_schema(schema))
    errors = sorted(validator.iter_errors(manifest(inputs)), key=lambda e: list(e.path))
    if errors:
        e = errors[0]
        where = ".".join(str(p) for p in e.path) or "(root)"
        return f"{where}: {e.message}"
    return None


@functools.cache
def template_value_paths(upstream: Path, values_file: str) -> frozenset[str]:
    """`.Values.a.b` paths the chart's own templates read (some are not in values.yaml:
    knative-operator's pod `securityContext`), and its bundled subcharts' under their name or
    alias (node-exporter's `priorityClassName` is only a comment in its values.yaml), when the
    chart source is there."""
    source = _chart_source(upstream, values_file)
    found: set[str] = set(_paths_read(source / "templates"))
    meta = source / "Chart.yaml"
    if meta.is_file():
        for dep in (yaml.load(meta.read_text(), Loader=YAML_LOADER) or {}).get("dependencies") or []:
            key = dep.get("alias") or dep["name"]
            found.update(f"{key}.{p}" for p in _paths_read(source / "charts" / dep["name"] / "templates"))
    return frozenset(found)


def _paths_read(templates: Path) -> set[str]:
    found: set[str] = set()
    if templates.is_dir():
        for path in templates.rglob("*"):
            if path.is_file():
                found.update(re.findall(r"\.Values\.([A-Za-z0-9_.]+[A-Za-z0-9_])", path.read_text(errors="replace")))
    return found


def unknown_value_keys(values: Any, defaults: Any, freeform: set[str], prefix: str = "",
                       referenced: frozenset[str] = frozenset()) -> list[str]:
    """Keys of `values` that the chart's defaults do not have and its templates never read
    (paths like `rbac.serviceAccount.nmae`)."""
    if not isinstance(values, dict) or not isinstance(defaults, dict):
        return []
    unknown = []
    for key, value in values.items():
        path = f"{prefix}{key}"
        if key not in defaults:
            if path not in referenced:
                unknown.append(path)
            continue
        default = defaults[key]
        # An empty or null default is a free-form map (annotations, resources, selectors).
        if path in freeform or key in FREEFORM_KEYS or not isinstance(default, dict) or not default:
            continue
        unknown += unknown_value_keys(value, default, freeform, f"{path}.", referenced)
    return unknown
