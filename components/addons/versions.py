"""Every chart and image version the platform installs. Nothing floats.

The chart versions match the upstream reference data in `shared/upstream`, so the
offline plan can check our Helm values against the exact chart we install.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Chart:
    name: str
    version: str
    repo: str

    @property
    def values_file(self) -> str:
        """File name of the chart's default values in the upstream reference data."""
        return f"{self.name}-{self.version}.values.yaml"


CLUSTER_AUTOSCALER = Chart("cluster-autoscaler", "9.59.0", "https://kubernetes.github.io/autoscaler")

CHARTS: tuple[Chart, ...] = (CLUSTER_AUTOSCALER,)

# The autoscaler's minor version must match the cluster's Kubernetes minor version.
CLUSTER_AUTOSCALER_IMAGE = "registry.k8s.io/autoscaling/cluster-autoscaler"
CLUSTER_AUTOSCALER_TAGS: dict[str, str] = {
    "1.32": "v1.32.5",
    "1.33": "v1.33.5",
    "1.34": "v1.34.4",
    "1.35": "v1.35.1",
}

SUPPORTED_KUBERNETES_VERSIONS: tuple[str, ...] = tuple(CLUSTER_AUTOSCALER_TAGS)
