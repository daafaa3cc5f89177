"""Checks what the program renders against upstream schemas:

- core Kubernetes objects against the official OpenAPI schemas of the cluster's
  Kubernetes version (kubernetes-validate, strict: unknown fields are errors);
- Helm values against the pinned chart's own default values (Helm silently ignores
  a misspelt key, so every key we set must exist there).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml

UPSTREAM_ENV = "AI_PLATFORM_UPSTREAM"
REPO = Path(__file__).resolve().parent.parent
# Not Kubernetes objects: providers, Helm releases and other Pulumi-side resources.
_NOT_OBJECTS = ("kubernetes:helm.sh/", "kubernetes:yaml", "kubernetes:kustomize")
HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
# Value maps a chart passes through verbatim (its defaults list only examples).
FREEFORM_VALUES: dict[str, set[str]] = {"cluster-autoscaler": {"extraArgs"}}


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


def kubernetes_object(inputs: dict, kubernetes_version: str) -> str | None:
    """The validation error for one object, or None when it is valid."""
    version = f"{kubernetes_version}.0"
    try:
        kubernetes_validate.validate(manifest(inputs), version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        where = ".".join(str(p) for p in exc.path) or "(root)"
        return f"{where}: {exc.message}"
    except kubernetes_validate.SchemaNotFoundError:
        return f"no schema for {inputs.get('apiVersion')}/{inputs.get('kind')} in Kubernetes {kubernetes_version}"
    except kubernetes_validate.VersionNotSupportedError:
        return f"kubernetes-validate has no schemas for Kubernetes {kubernetes_version}"
    return None


@functools.cache
def chart_defaults(upstream: Path, values_file: str) -> Any:
    path = upstream / "charts" / values_file
    if not path.is_file():
        return None
    return yaml.safe_load(path.read_text()) or {}


def unknown_value_keys(values: Any, defaults: Any, freeform: set[str], prefix: str = "") -> list[str]:
    """Keys of `values` that the chart's defaults do not have (paths like `rbac.serviceAccount.nmae`)."""
    if not isinstance(values, dict) or not isinstance(defaults, dict):
        return []
    unknown = []
    for key, value in values.items():
        path = f"{prefix}{key}"
        if key not in defaults:
            unknown.append(path)
            continue
        default = defaults[key]
        # An empty or null default is a free-form map (annotations, resources, selectors).
        if path in freeform or not isinstance(default, dict) or not default:
            continue
        unknown += unknown_value_keys(value, default, freeform, f"{path}.")
    return unknown
