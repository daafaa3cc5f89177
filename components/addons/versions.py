"""Every chart and image version the platform installs. Nothing floats.

The chart versions match the upstream reference data in `shared/upstream`, so the
offline plan checks our Helm values against the exact chart we install.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Chart:
    name: str
    """Chart name, or the full `oci://` reference for OCI charts."""
    version: str
    repo: str | None
    """Classic Helm repository; None for OCI charts."""
    upstream: str | None
    """Name of the chart's default values in the upstream data (`<upstream>.values.yaml`);
    None where the upstream data has no values for it (then its values are not checked)."""
    values_root: str | None = None
    """Key the chart nests its defaults under (Istio uses `_internal_defaults_do_not_set`)."""

    @property
    def source(self) -> str:
        """Folder of the published chart (`helm pull`, unpacked): `<chart>-<version>`."""
        return f"{self.name.rsplit('/', 1)[-1]}-{self.version}"

    @property
    def values_file(self) -> str | None:
        return f"{self.upstream}.values.yaml" if self.upstream else None


_ISTIO_REPO = "https://istio-release.storage.googleapis.com/charts"
_ISTIO_ROOT = "_internal_defaults_do_not_set"

CLUSTER_AUTOSCALER = Chart("cluster-autoscaler", "9.59.0", "https://kubernetes.github.io/autoscaler",
                           "cluster-autoscaler-9.59.0")
GPU_OPERATOR = Chart("gpu-operator", "v26.7.0", "https://helm.ngc.nvidia.com/nvidia", "gpu-operator-v26.7.0")
KUBE_PROMETHEUS_STACK = Chart("kube-prometheus-stack", "88.5.3", "https://prometheus-community.github.io/helm-charts",
                              "kube-prometheus-stack-88.5.3")
ISTIO_BASE = Chart("base", "1.30.3", _ISTIO_REPO, "istio-base-1.30.3", _ISTIO_ROOT)
ISTIOD = Chart("istiod", "1.30.3", _ISTIO_REPO, "istiod-1.30.3", _ISTIO_ROOT)
ISTIO_GATEWAY = Chart("gateway", "1.30.3", _ISTIO_REPO, "istio-gateway-1.30.3", _ISTIO_ROOT)
# The CNI node agent lets sidecars start without NET_ADMIN (Pod Security "restricted").
ISTIO_CNI = Chart("cni", "1.30.3", _ISTIO_REPO, None, _ISTIO_ROOT)
CERT_MANAGER = Chart("cert-manager", "v1.21.1", "https://charts.jetstack.io", "cert-manager-v1.21.1")
KUEUE = Chart("oci://registry.k8s.io/kueue/charts/kueue", "0.19.2", None, "kueue-0.19.2")
KSERVE_CRD = Chart("oci://ghcr.io/kserve/charts/kserve-crd", "v0.20.0", None, None)
KSERVE = Chart("oci://ghcr.io/kserve/charts/kserve-resources", "v0.20.0", None, "kserve-resources-v0.20.0")
# The Helm repository lists this release as v1.23.0 (git tag knative-v1.23.0; the same
# commit's Go-module tag v0.50.0 is not a chart version).
KNATIVE_OPERATOR = Chart("knative-operator", "v1.23.0", "https://knative.github.io/operator",
                         "knative-operator-v1.23.0")

CHARTS: tuple[Chart, ...] = (
    CLUSTER_AUTOSCALER, GPU_OPERATOR, KUBE_PROMETHEUS_STACK, ISTIO_BASE, ISTIOD, ISTIO_GATEWAY, ISTIO_CNI,
    CERT_MANAGER, KUEUE, KSERVE_CRD, KSERVE, KNATIVE_OPERATOR,
)


def chart_for(name: str, version: str) -> Chart | None:
    return next((c for c in CHARTS if c.name == name and c.version == version), None)


ISTIO_VERSION = ISTIOD.version

# The autoscaler's minor version must match the cluster's Kubernetes minor version.
CLUSTER_AUTOSCALER_IMAGE = "registry.k8s.io/autoscaling/cluster-autoscaler"
CLUSTER_AUTOSCALER_TAGS: dict[str, str] = {
    "1.32": "v1.32.5",
    "1.33": "v1.33.5",
    "1.34": "v1.34.4",
    "1.35": "v1.35.1",
}

SUPPORTED_KUBERNETES_VERSIONS: tuple[str, ...] = tuple(CLUSTER_AUTOSCALER_TAGS)
