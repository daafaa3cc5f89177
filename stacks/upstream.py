"""`python -m stacks upstream`: download the pinned upstream data (chart default values,
CRDs, the Pulumi project schema) that the offline plan checks against, for users who do
not have `shared/upstream`. Every file comes from a fixed commit, so it never drifts."""

from __future__ import annotations

import json
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path

import yaml

# (file, repository, commit, path in the repository); the same table as shared/upstream/README.md.
FILES: tuple[tuple[str, str, str, str], ...] = (
    ("gpu-operator-v26.7.0.values.yaml", "NVIDIA/gpu-operator", "10ee5b3638b89e11e949412aafa5ba99279c3721", "deployments/gpu-operator/values.yaml"),
    ("kube-prometheus-stack-88.5.3.values.yaml", "prometheus-community/helm-charts", "ea930baeebeba39f56d6b44e351f23b2a072a600", "charts/kube-prometheus-stack/values.yaml"),
    ("cluster-autoscaler-9.59.0.values.yaml", "kubernetes/autoscaler", "5a0b98e45f896e98132737240ac131a519d3b33d", "cluster-autoscaler/charts/cluster-autoscaler/values.yaml"),
    ("istio-base-1.30.3.values.yaml", "istio/istio", "56df41f63e513f834c9a3af33d8aed82d1d961f2", "manifests/charts/base/values.yaml"),
    ("istiod-1.30.3.values.yaml", "istio/istio", "56df41f63e513f834c9a3af33d8aed82d1d961f2", "manifests/charts/istio-control/istio-discovery/values.yaml"),
    ("istio-gateway-1.30.3.values.yaml", "istio/istio", "56df41f63e513f834c9a3af33d8aed82d1d961f2", "manifests/charts/gateway/values.yaml"),
    ("cert-manager-v1.21.1.values.yaml", "cert-manager/cert-manager", "24e33194fb39488eff2bbf10c6dc640f407cad44", "deploy/charts/cert-manager/values.yaml"),
    ("kueue-0.19.2.values.yaml", "kubernetes-sigs/kueue", "8eab68778fc1b52affe165fdf5af29d1e9b4f3cb", "charts/kueue/values.yaml"),
    ("kserve-resources-v0.20.0.values.yaml", "kserve/kserve", "1fb781055dd1567164358233e1125142ca6ef1fe", "charts/kserve-resources/values.yaml"),
    ("kueue-0.19.2.admissionchecks.yaml", "kubernetes-sigs/kueue", "8eab68778fc1b52affe165fdf5af29d1e9b4f3cb", "config/components/crd/bases/kueue.x-k8s.io_admissionchecks.yaml"),
    ("kueue-0.19.2.clusterqueues.yaml", "kubernetes-sigs/kueue", "8eab68778fc1b52affe165fdf5af29d1e9b4f3cb", "config/components/crd/bases/kueue.x-k8s.io_clusterqueues.yaml"),
    ("kueue-0.19.2.cohorts.yaml", "kubernetes-sigs/kueue", "8eab68778fc1b52affe165fdf5af29d1e9b4f3cb", "config/components/crd/bases/kueue.x-k8s.io_cohorts.yaml"),
    ("kueue-0.19.2.localqueues.yaml", "kubernetes-sigs/kueue", "8eab68778fc1b52affe165fdf5af29d1e9b4f3cb", "config/components/crd/bases/kueue.x-k8s.io_localqueues.yaml"),
    ("kueue-0.19.2.multikueueclusters.yaml", "kubernetes-sigs/kueue", "8eab68778fc1b52affe165fdf5af29d1e9b4f3cb", "config/components/crd/bases/kueue.x-k8s.io_multikueueclusters.yaml"),
    ("kueue-0.19.2.multikueueconfigs.yaml", "kubernetes-sigs/kueue", "8eab68778fc1b52affe165fdf5af29d1e9b4f3cb", "config/components/crd/bases/kueue.x-k8s.io_multikueueconfigs.yaml"),
    ("kueue-0.19.2.resourceflavors.yaml", "kubernetes-sigs/kueue", "8eab68778fc1b52affe165fdf5af29d1e9b4f3cb", "config/components/crd/bases/kueue.x-k8s.io_resourceflavors.yaml"),
    ("kueue-0.19.2.workloadpriorityclasses.yaml", "kubernetes-sigs/kueue", "8eab68778fc1b52affe165fdf5af29d1e9b4f3cb", "config/components/crd/bases/kueue.x-k8s.io_workloadpriorityclasses.yaml"),
    ("kueue-0.19.2.topologies.yaml", "kubernetes-sigs/kueue", "8eab68778fc1b52affe165fdf5af29d1e9b4f3cb", "config/components/crd/bases/kueue.x-k8s.io_topologies.yaml"),
    ("istio-1.30.3.crd-all.gen.yaml", "istio/istio", "56df41f63e513f834c9a3af33d8aed82d1d961f2", "manifests/charts/base/files/crd-all.gen.yaml"),
    ("kserve-v0.20.0.inferenceservices.yaml", "kserve/kserve", "1fb781055dd1567164358233e1125142ca6ef1fe", "charts/kserve-crd/templates/serving.kserve.io_inferenceservices.yaml"),
    ("kserve-v0.20.0.servingruntimes.yaml", "kserve/kserve", "1fb781055dd1567164358233e1125142ca6ef1fe", "charts/kserve-crd/templates/serving.kserve.io_servingruntimes.yaml"),
    ("kserve-v0.20.0.clusterservingruntimes.yaml", "kserve/kserve", "1fb781055dd1567164358233e1125142ca6ef1fe", "charts/kserve-crd/templates/serving.kserve.io_clusterservingruntimes.yaml"),
    ("prometheus-operator-88.5.3.servicemonitors.yaml", "prometheus-community/helm-charts", "ea930baeebeba39f56d6b44e351f23b2a072a600", "charts/kube-prometheus-stack/charts/crds/crds/crd-servicemonitors.yaml"),
    ("prometheus-operator-88.5.3.podmonitors.yaml", "prometheus-community/helm-charts", "ea930baeebeba39f56d6b44e351f23b2a072a600", "charts/kube-prometheus-stack/charts/crds/crds/crd-podmonitors.yaml"),
    ("prometheus-operator-88.5.3.prometheusrules.yaml", "prometheus-community/helm-charts", "ea930baeebeba39f56d6b44e351f23b2a072a600", "charts/kube-prometheus-stack/charts/crds/crds/crd-prometheusrules.yaml"),
    ("gpu-operator-v26.7.0.clusterpolicies.yaml", "NVIDIA/gpu-operator", "10ee5b3638b89e11e949412aafa5ba99279c3721", "deployments/gpu-operator/crds/nvidia.com_clusterpolicies.yaml"),
    # Tag knative-v1.23.0 (the Go module's v0.50.0 is the same commit); the Helm repository
    # publishes this chart as v1.23.0 only.
    ("knative-operator-v1.23.0.values.yaml", "knative/operator", "8f004985af79024f25b9e6014da1a4c22bf48182", "config/charts/knative-operator/values.yaml"),
    ("knative-operator-v1.23.0.knativeservings.yaml", "knative/operator", "8f004985af79024f25b9e6014da1a4c22bf48182", "config/crd/bases/operator.knative.dev_knativeservings.yaml"),
    ("project.schema.json", "pulumi/pulumi", "0498be116be896fa28b5af4746ad197666167d85", "sdk/go/common/workspace/project.json"),
)


# What each chart's release tooling substitutes into git's files when it packages them
# (knative's hack/generate-helm.sh stamps the image tag), applied so the files match the
# published chart.
RELEASE_SUBSTITUTIONS: dict[str, tuple[tuple[str, str], ...]] = {
    "knative-operator-v1.23.0.values.yaml": (("{{ tag }}", "v1.23.0"),),
}


def folder(name: str) -> str:
    if name.endswith(".values.yaml"):
        return "charts"
    return "pulumi" if name.endswith(".json") else "crds"


def _fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 - fixed https URLs
        return response.read()


def download(dest: Path, fetch: Callable[[str], bytes] = _fetch) -> list[Path]:
    """Write every file under `dest/<charts|crds|pulumi>/`, checking each one parses."""
    written = []
    for name, repo, commit, path in FILES:
        url = f"https://raw.githubusercontent.com/{repo}/{commit}/{path}"
        data = fetch(url)
        text = data.decode()
        for old, new in RELEASE_SUBSTITUTIONS.get(name, ()):
            text = text.replace(old, new)
        data = text.encode()
        # Chart values may hold Go-template placeholders; CRDs and the schema must parse.
        if name.endswith(".json"):
            json.loads(text)
        elif not name.endswith(".values.yaml"):
            list(yaml.load_all(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)))
        target = dest / folder(name) / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        written.append(target)
    return written


def main(dest: str) -> int:
    try:
        files = download(Path(dest))
    except OSError as exc:
        print(f"error: cannot download the upstream data: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {len(files)} files to {dest}; the plan finds them there (or set AI_PLATFORM_UPSTREAM)")
    return 0
