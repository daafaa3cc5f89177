"""Add-ons on every cluster: what the GPU Operator is told per cloud, mTLS, tenant
isolation and queues, quota agreement, secrets, toggles and install ordering."""

from __future__ import annotations

import json

import pytest
import yaml

from components.addons import versions
from components.addons.kueue import split_gpus
from components.clusters.base import GpuPool, Taint
from stacks import validate
from stacks.engine import is_secret

from .conftest import REPO, inputs, plan_config

RELEASE = "kubernetes:helm.sh/v3:Release"
MINIMAL_CLUSTER = {"name": "primary", "cloud": "aws", "region": "us-west-2",
                   "gpuPools": [{"name": "l4", "machineType": "g6.xlarge"}]}


def release(run, chart_name: str, cluster: str = "primary") -> dict:
    """The release of a chart on one cluster (resource names start with the cluster's)."""
    (r,) = [r for r in run.by_type(RELEASE) if inputs(r)["chart"].rsplit("/", 1)[-1] == chart_name
            and r.name.startswith(f"{cluster}-")]
    return inputs(r)


def one(run, type_suffix: str, name: str, namespace: str | None = None, cluster: str = "primary") -> dict:
    found = [inputs(r) for r in run.resources if r.type.endswith(type_suffix) and r.name.startswith(f"{cluster}-")
             and inputs(r)["metadata"]["name"] == name and inputs(r)["metadata"].get("namespace") == namespace]
    assert len(found) == 1, (type_suffix, name, namespace, len(found))
    return found[0]


# -- GPU Operator -------------------------------------------------------------------------


def test_gpu_operator_driver_mode_follows_each_clouds_guidance(cloud_plans):
    values = {cloud: release(p.run, "gpu-operator")["values"] for cloud, p in cloud_plans.items()}
    # EKS NVIDIA AMI: driver and toolkit preinstalled.
    assert values["aws"]["driver"] == {"enabled": False} and values["aws"]["toolkit"] == {"enabled": False}
    # GKE: Google-installed driver, its host paths, CDI.
    assert values["gcp"]["driver"] == {"enabled": False}
    assert values["gcp"]["hostPaths"]["driverInstallDir"] == "/home/kubernetes/bin/nvidia"
    assert values["gcp"]["toolkit"]["installDir"] == "/home/kubernetes/bin/nvidia"
    assert values["gcp"]["cdi"] == {"enabled": True}
    # AKS: the operator installs the driver, and AKS is told not to.
    assert values["azure"]["driver"] == {"enabled": True}
    pools = [inputs(r) for r in cloud_plans["azure"].run.by_type("azure-native:containerservice:AgentPool")
             if "ai-platform.io/gpu-model" in inputs(r)["nodeLabels"]]
    assert pools and all(p["gpuProfile"] == {"driver": "None"} for p in pools)
    # GKE hands the device plugin to the operator.
    gke_pools = [inputs(r)["nodeConfig"]["labels"] for r in cloud_plans["gcp"].run.by_type("gcp:container/nodePool:NodePool")
                 if "ai-platform.io/gpu-model" in inputs(r)["nodeConfig"]["labels"]]
    assert gke_pools and all(p["gke-no-default-nvidia-gpu-device-plugin"] == "true" for p in gke_pools)


def test_unprivileged_containers_cannot_pick_gpus_where_the_operator_runs_the_toolkit(cloud_plans, upstream):
    from stacks import render

    for cloud, plan in cloud_plans.items():
        values = release(plan.run, "gpu-operator")
        (policy,) = [d for d in render.render_release(upstream, values) if d["kind"] == "ClusterPolicy"]
        spec = policy["spec"]
        env = {e["name"]: e["value"] for e in spec["toolkit"].get("env") or []}
        if cloud == "aws":  # the NVIDIA AMI brings its own toolkit: the operator must leave it alone
            assert spec["toolkit"]["enabled"] is False and not env
            continue
        assert spec["toolkit"]["enabled"] is True, cloud
        assert env.get("ACCEPT_NVIDIA_VISIBLE_DEVICES_ENVVAR_WHEN_UNPRIVILEGED") == "false", cloud
        # Devices reach containers by CDI, not by the variable the runtime now ignores.
        assert spec["cdi"]["enabled"] is True, cloud
        assert not any(e["name"] == "DEVICE_LIST_STRATEGY" for e in spec["devicePlugin"].get("env") or []), cloud


def test_gpu_operator_tolerates_gpu_taints_and_exports_dcgm_to_prometheus(prod_plan):
    values = release(prod_plan.run, "gpu-operator")["values"]
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in values["daemonsets"]["tolerations"]
    # honorLabels: the exporter's namespace/pod (the GPU's workload) stay as they are.
    assert values["dcgmExporter"] == {"enabled": True, "serviceMonitor": {"enabled": True, "honorLabels": True}}
    assert values["operator"]["nodeSelector"] == {"ai-platform.io/pool": "system"}


def test_time_slicing_is_configured_per_pool_by_node_label(prod_plan):
    run = prod_plan.run
    values = release(run, "gpu-operator")["values"]
    config = one(run, ":ConfigMap", values["devicePlugin"]["config"]["name"], "gpu-operator")
    sliced = yaml.safe_load(config["data"]["inference"])
    assert sliced["sharing"]["timeSlicing"]["resources"] == [{"name": "nvidia.com/gpu", "replicas": 4}]
    assert values["devicePlugin"]["config"]["default"] in config["data"]
    groups = {inputs(r)["labels"].get("ai-platform.io/pool"): inputs(r)["labels"]
              for r in run.by_type("aws:eks/nodeGroup:NodeGroup") if r.name.startswith("primary-")}
    assert groups["inference"]["nvidia.com/device-plugin.config"] == "inference"
    assert "nvidia.com/device-plugin.config" not in groups["training"]


def test_mig_profile_is_selected_per_pool_by_node_label(cloud_plans):
    run = cloud_plans["azure"].run
    pools = {inputs(r)["agentPoolName"]: inputs(r) for r in run.by_type("azure-native:containerservice:AgentPool")}
    assert pools["training"]["nodeLabels"]["nvidia.com/mig.config"] == "all-1g.10gb"
    # The operator partitions the GPUs, so AKS must not.
    assert "gpuInstanceProfile" not in pools["training"]
    assert release(run, "gpu-operator")["values"]["migManager"]["enabled"] is True


# -- mesh ---------------------------------------------------------------------------------


def test_mesh_wide_mtls_is_strict(prod_plan):
    peer = one(prod_plan.run, ":PeerAuthentication", "default", "istio-system")
    assert peer["spec"] == {"mtls": {"mode": "STRICT"}}


def test_each_tenant_admits_only_its_namespace_and_the_ingress_gateway(prod_plan):
    for tenant in ("research", "recsys", "nlp"):
        authz = one(prod_plan.run, ":AuthorizationPolicy", "tenant-isolation", tenant)
        rules = authz["spec"]["rules"]
        assert authz["spec"]["action"] == "ALLOW"
        assert rules[0]["from"][0]["source"]["namespaces"][0] == tenant
        assert set(rules[0]["from"][0]["source"]["namespaces"][1:]) <= {"istio-system", "knative-serving", "monitoring"}
        assert rules[1]["from"][0]["source"]["principals"] == ["cluster.local/ns/istio-system/sa/istio-ingressgateway"]
        labels = one(prod_plan.run, ":Namespace", tenant)["metadata"]["labels"]
        assert labels["istio-injection"] == "enabled"
        assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


def test_prod_mesh_is_highly_available_and_the_gateway_internal(prod_plan, dev_plan):
    istiod = release(prod_plan.run, "istiod")["values"]
    gateway = release(prod_plan.run, "gateway")["values"]
    assert istiod["replicaCount"] >= 2 and istiod["pdb"] == {"minAvailable": 1}
    assert gateway["replicaCount"] >= 2 and gateway["podDisruptionBudget"] == {"minAvailable": 1}
    assert gateway["service"]["annotations"] == {"service.beta.kubernetes.io/aws-load-balancer-internal": "true"}
    assert release(dev_plan.run, "istiod")["values"]["replicaCount"] == 1
    assert release(prod_plan.run, "istiod")["values"]["cni"] == {"enabled": True}


# -- Kueue --------------------------------------------------------------------------------


def test_every_tenant_gets_a_local_queue_feeding_its_cluster_queue(prod_plan):
    for tenant in ("research", "recsys", "nlp"):
        local = one(prod_plan.run, ":LocalQueue", "default", tenant)
        assert local["apiVersion"] == "kueue.x-k8s.io/v1beta2" and local["spec"] == {"clusterQueue": tenant}
        queue = one(prod_plan.run, ":ClusterQueue", tenant)
        assert queue["spec"]["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": tenant}}
        assert queue["spec"]["cohortName"] == "ai-platform"
        assert queue["spec"]["preemption"] == {"reclaimWithinCohort": "Any", "withinClusterQueue": "LowerPriority"}
        assert queue["spec"]["fairSharing"] == {"weight": 1}


def test_kueue_quota_and_namespace_quota_agree(cloud_plans):
    config = yaml.safe_load((REPO / "examples" / "Pulumi.prod-aws.yaml").read_text())["config"]
    tenants = {t["name"]: t for t in config["ai-platform:tenants"]}
    for cloud, result in cloud_plans.items():
        for name, t in tenants.items():
            hard = one(result.run, ":ResourceQuota", "tenant-quota", name)["spec"]["hard"]
            groups = one(result.run, ":ClusterQueue", name)["spec"]["resourceGroups"]
            cpu_mem = {r["name"]: r["nominalQuota"] for r in groups[0]["flavors"][0]["resources"]}
            gpu = [r for f in groups[1]["flavors"] for r in f["resources"]]
            borrow = t.get("borrowGpus", 0)
            assert sum(r["nominalQuota"] for r in gpu) == t["gpus"], (cloud, name)
            assert all(r.get("borrowingLimit", 0) == borrow for r in gpu)
            assert int(hard["requests.nvidia.com/gpu"]) == t["gpus"] + borrow
            assert (cpu_mem["cpu"], cpu_mem["memory"]) == (hard["requests.cpu"], hard["requests.memory"])


def test_one_flavor_per_gpu_pool_with_its_labels_and_taint(cloud_plans):
    for cloud in ("aws", "gcp", "azure"):
        flavor = one(cloud_plans[cloud].run, ":ResourceFlavor", "training")
        assert flavor["spec"]["nodeLabels"] == {"ai-platform.io/pool": "training"}
        assert flavor["spec"]["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    classes = {inputs(r)["metadata"]["name"]: inputs(r)["value"] for r in cloud_plans["aws"].run.resources
               if r.type.endswith(":WorkloadPriorityClass") and r.name.startswith("primary-")}
    assert classes == {"platform-high": 1000, "platform-normal": 100, "platform-low": 10}


def _pool(name: str, gpus: int, max_: int) -> GpuPool:
    return GpuPool(name, "m", gpus, "x", 0, max_, "spot", 100, Taint("nvidia.com/gpu", "true"))


@pytest.mark.parametrize("total", [0, 1, 7, 16, 33])
def test_gpu_split_adds_up_and_follows_capacity(total):
    pools = (_pool("big", 8, 4), _pool("small", 1, 20), _pool("tiny", 1, 1))
    parts = split_gpus(total, pools)
    assert sum(parts.values()) == total
    assert parts["big"] >= parts["small"] >= parts["tiny"]


# -- observability ------------------------------------------------------------------------


def test_grafana_password_is_generated_secret_and_never_plain(prod_plan):
    run = prod_plan.run
    secrets = [r for r in run.resources if r.type.endswith(":Secret") and inputs(r)["metadata"]["name"] == "grafana-admin"]
    assert len(secrets) == 2  # primary and burst (the dedicated manager runs no Grafana)
    for secret in secrets:
        data = secret.inputs["stringData"]
        assert is_secret(data) or is_secret(data["admin-password"])
    assert len(run.by_type("random:index/randomPassword:RandomPassword")) == 2
    assert is_secret(run.outputs["grafanaAdminPasswords"])
    values = release(run, "kube-prometheus-stack")["values"]
    assert values["grafana"]["admin"]["existingSecret"] == "grafana-admin"
    assert "adminPassword" not in json.dumps(values)


def test_grafana_password_from_secret_config(tmp_path):
    config = {"environment": "dev", "clusters": [MINIMAL_CLUSTER], "grafanaAdminPassword": {"secure": "v1:abc"}}
    result = plan_config(tmp_path, config)
    assert result.exit_code == 0, result.config_errors
    assert result.run.by_type("random:index/randomPassword:RandomPassword") == []
    plain = plan_config(tmp_path, {**config, "grafanaAdminPassword": "hunter2"}, "plain")
    assert plain.exit_code == 2
    assert "ai-platform:grafanaAdminPassword: must be stored encrypted" in plain.config_errors[0]


def test_prometheus_keeps_data_on_encrypted_storage_with_retention(prod_plan):
    spec = release(prod_plan.run, "kube-prometheus-stack")["values"]["prometheus"]["prometheusSpec"]
    assert spec["retention"] == "15d"
    claim = spec["storageSpec"]["volumeClaimTemplate"]["spec"]
    assert claim["storageClassName"] == "gp3-encrypted" and claim["resources"]["requests"]["storage"] == "50Gi"
    sc = one(prod_plan.run, ":StorageClass", "gp3-encrypted")
    assert sc["parameters"] == {"type": "gp3", "encrypted": "true"}


def test_gpu_dashboards_and_alerts(prod_plan):
    dashboards = [inputs(r) for r in prod_plan.run.resources if r.type.endswith(":ConfigMap")
                  and r.name.startswith("primary-")
                  and inputs(r)["metadata"].get("labels", {}).get("grafana_dashboard") == "1"]
    titles = {json.loads(next(iter(d["data"].values())))["title"] for d in dashboards}
    assert titles == {"GPUs (NVIDIA DCGM exporter)", "GPU usage per tenant"}
    rules = one(prod_plan.run, ":PrometheusRule", "ai-platform-gpu", "monitoring")
    alerts = {r["alert"]: r for g in rules["spec"]["groups"] for r in g["rules"]}
    assert set(alerts) == {"GpuXidError", "GpuTemperatureHigh", "GpuMemoryNearlyFull", "GpuAllocatedButIdle"}
    assert "DCGM_FI_DEV_XID_ERRORS" in alerts["GpuXidError"]["expr"]


# -- toggles, dependencies, ordering ------------------------------------------------------


def test_every_addon_can_be_turned_off(tmp_path):
    off = {a: {"enabled": False} for a in ("gpuOperator", "observability", "mesh", "certManager", "serving", "kueue")}
    result = plan_config(tmp_path, {"environment": "dev", "clusters": [MINIMAL_CLUSTER], "addons": off,
                                    "tenants": [{"name": "a", "gpus": 1}]})
    assert result.exit_code == 0, (result.config_errors, result.findings, result.violations)
    assert [inputs(r)["chart"] for r in result.run.by_type(RELEASE)] == ["cluster-autoscaler"]
    kinds = {r.type.rsplit(":", 1)[-1] for r in result.run.resources if validate.is_kubernetes_object(r.type)}
    assert "AuthorizationPolicy" not in kinds and "LocalQueue" not in kinds and "ResourceQuota" in kinds
    # The autoscaler too: allowed by the schema, but EKS GPU pools could then never scale.
    off["clusterAutoscaler"] = {"enabled": False}
    stuck = plan_config(tmp_path, {"environment": "dev", "clusters": [MINIMAL_CLUSTER], "addons": off}, "stuck")
    assert stuck.exit_code == 1 and stuck.run.by_type(RELEASE) == []
    assert {v.policy for v in stuck.violations} == {"stack-gpu-pools-tainted-autoscaled"}


@pytest.mark.parametrize(
    ("addons", "path", "fragment"),
    [
        ({"certManager": {"enabled": False}}, "ai-platform:addons.serving.enabled", "needs addons.certManager"),
        ({"mesh": {"enabled": False}}, "ai-platform:addons.serving.mode", "knative needs addons.mesh"),
        ({"serving": {"enabled": False, "exampleInferenceService": True}},
         "ai-platform:addons.serving.exampleInferenceService", "needs addons.serving"),
    ],
)
def test_turning_off_a_needed_addon_is_a_config_error(tmp_path, addons, path, fragment):
    result = plan_config(tmp_path, {"environment": "dev", "clusters": [MINIMAL_CLUSTER], "addons": addons})
    assert result.exit_code == 2
    assert any(f": {path}: " in line and fragment in line for line in result.config_errors), result.config_errors


def test_standard_serving_runs_without_knative_or_mesh(tmp_path):
    result = plan_config(tmp_path, {"environment": "dev", "clusters": [MINIMAL_CLUSTER],
                                    "addons": {"mesh": {"enabled": False}, "serving": {"mode": "standard"}}})
    assert result.exit_code == 0, (result.config_errors, result.findings)
    charts = {inputs(r)["chart"].rsplit("/", 1)[-1] for r in result.run.by_type(RELEASE)}
    assert "knative-operator" not in charts and "kserve-resources" in charts
    controller = release(result.run, "kserve-resources")["values"]["kserve"]["controller"]
    assert controller["deploymentMode"] == "Standard"
    # No mesh: no Ingress of class `istio` that nothing would serve.
    assert controller["gateway"] == {"disableIngressCreation": True, "disableIstioVirtualHost": True}


def test_example_inference_service_is_valid_against_the_pinned_crd(tmp_path, upstream):
    result = plan_config(tmp_path, {"environment": "dev", "clusters": [MINIMAL_CLUSTER],
                                    "tenants": [{"name": "a", "gpus": 1}],
                                    "addons": {"serving": {"exampleInferenceService": True}}})
    assert result.exit_code == 0, result.findings
    isvc = one(result.run, ":InferenceService", "example-sklearn", "a")
    assert isvc["spec"]["predictor"]["model"]["modelFormat"] == {"name": "sklearn"}


def test_only_real_dependencies_are_ordered(prod_plan):
    run = prod_plan.run
    urn = {inputs(r)["chart"].rsplit("/", 1)[-1]: r for r in run.by_type(RELEASE) if r.name.startswith("primary-")}

    def deps(chart):
        return {d for d in urn[chart].dependencies}

    assert urn["cert-manager"].urn in deps("kserve-resources")
    assert urn["kserve-crd"].urn in deps("kserve-resources")
    knative_serving = next(r for r in run.resources if r.type.endswith(":KnativeServing") and r.name.startswith("primary-"))
    assert {urn["istiod"].urn, urn["gateway"].urn, urn["knative-operator"].urn} <= set(knative_serving.dependencies)
    assert urn["kube-prometheus-stack"].urn in deps("gpu-operator")  # the ServiceMonitor CRD
    for cr in (r for r in run.resources if r.type.startswith("kubernetes:kueue.x-k8s.io") and r.name.startswith("primary-")):
        assert urn["kueue"].urn in cr.dependencies, cr.name
    # Independent add-ons install in parallel.
    releases = {r.urn for r in urn.values()}
    assert not deps("cert-manager") & releases
    assert not deps("kube-prometheus-stack") & releases
    assert not deps("kueue") & releases


def test_tenant_namespaces_do_not_wait_for_any_chart(prod_plan):
    """Only a tenant's AuthorizationPolicy and LocalQueues need CRDs; its namespace, quota,
    limits, policies and bindings go in as soon as the API server answers."""
    run = prod_plan.run
    releases = {r.urn for r in run.by_type(RELEASE)}
    tenants = [r for r in run.resources if r.type == "ai-platform:tenancy:Tenant"]
    assert tenants
    checked = set()
    for tenant in tenants:
        assert not set(tenant.dependencies) & releases, tenant.name
        for child in (r for r in run.resources if r.parent == tenant.urn):
            crd_bound = child.type.endswith((":AuthorizationPolicy", ":LocalQueue"))
            assert bool(set(child.dependencies) & releases) == crd_bound, child.name
            checked.add(child.type.rsplit(":", 1)[-1])
    assert {"Namespace", "ResourceQuota", "NetworkPolicy", "AuthorizationPolicy", "LocalQueue"} <= checked
    base = next(r for r in run.by_type(RELEASE) if r.name == "primary-mesh-base")
    authz = next(r for r in run.resources if r.type.endswith(":AuthorizationPolicy") and r.name.startswith("primary-"))
    assert base.urn in authz.dependencies


def test_every_release_is_a_pinned_chart(prod_plan):
    for r in prod_plan.run.by_type(RELEASE):
        p = inputs(r)
        chart = versions.chart_for(p["chart"], p["version"])
        assert chart is not None, p["chart"]
        assert (chart.repo is None) == p["chart"].startswith("oci://")


def test_custom_resources_are_validated_strictly(upstream):
    queue = {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ClusterQueue", "metadata": {"name": "q"},
             "spec": {"cohort": "old-v1beta1-field", "resourceGroups": []}}
    assert "cohort" in validate.custom_resource(queue, upstream)
    queue["spec"] = {"cohortName": "ok", "resourceGroups": []}
    assert validate.custom_resource(queue, upstream) is None
    peer = {"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication", "metadata": {"name": "x"},
            "spec": {"mtls": {"mode": "STRICTEST"}}}
    assert "STRICTEST" in validate.custom_resource(peer, upstream)
    assert "no pinned CRD" in validate.custom_resource({**peer, "apiVersion": "example.com/v1"}, upstream)


def test_grafana_reads_dashboards_and_secrets_only_in_its_namespace(prod_plan, upstream):
    from stacks import render

    values = release(prod_plan.run, "kube-prometheus-stack")
    docs = render.render_release(upstream, values)
    grafana_rbac = [d for d in docs if "grafana" in d["metadata"]["name"]
                    and d["kind"] in ("ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")]
    assert grafana_rbac and {d["kind"] for d in grafana_rbac} == {"Role", "RoleBinding"}
    assert {d["metadata"]["namespace"] for d in grafana_rbac} == {"monitoring"}
    (deployment,) = [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"].endswith("-grafana")]
    (sidecar,) = [c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "grafana-sc-dashboard"]
    assert {"name": "NAMESPACE", "value": "monitoring"} in sidecar["env"]
    # ...where the platform's own dashboards are.
    dashboards = [inputs(r) for r in prod_plan.run.by_type("kubernetes:core/v1:ConfigMap")
                  if "grafana_dashboard" in (inputs(r)["metadata"].get("labels") or {})]
    assert dashboards and {d["metadata"]["namespace"] for d in dashboards} == {"monitoring"}


def test_kueue_keeps_a_controller_through_drains_in_prod_and_never_blocks_a_drain_in_dev(dev_plan, prod_plan):
    # A PDB of minAvailable 1 over a single replica would keep every node drain waiting forever.
    dev = release(dev_plan.run, "kueue")["values"]
    assert dev["controllerManager"]["replicas"] == 1 and not dev["controllerManager"]["podDisruptionBudget"]["enabled"]
    prod = release(prod_plan.run, "kueue")["values"]["controllerManager"]
    assert prod["replicas"] == 2
    assert prod["podDisruptionBudget"] == {"enabled": True, "minAvailable": 1}
    # Prometheus runs on both: it scrapes Kueue's queue metrics (pending workloads, quota use).
    assert dev["enablePrometheus"] is True and release(prod_plan.run, "kueue")["values"]["enablePrometheus"] is True
    # Only a MultiKueue manager carries the dispatcher settings; the workers' Kueue stays plain.
    for cluster, manager in (("manager", True), ("primary", False), ("burst", False)):
        config = yaml.safe_load(release(prod_plan.run, "kueue", cluster)["values"]["managerConfig"][
            "controllerManagerConfigYaml"])
        assert ("multiKueue" in config) is manager, cluster
        assert config["fairSharing"]["preemptionStrategies"] and config["manageJobsWithoutQueueName"] is True


def test_platform_namespaces_are_privileged_only_where_a_host_agent_runs(dev_plan):
    from policies.rules.kubernetes import PLATFORM_EXEMPTIONS

    levels = {inputs(r)["metadata"]["name"]: inputs(r)["metadata"]["labels"]["pod-security.kubernetes.io/enforce"]
              for r in dev_plan.run.by_type("kubernetes:core/v1:Namespace") if r.name.startswith("primary-")}
    host_agents = {ns for ns, *_ in PLATFORM_EXEMPTIONS}
    for ns, level in levels.items():
        assert level in ("restricted", "baseline", "privileged"), (ns, level)
        if level == "privileged":
            assert ns in host_agents, f"{ns} is privileged but runs no host agent the pack exempts"
    # Controllers only: the strictest level (their rendered pods are admitted there, see test_deploy).
    for ns in ("kueue-system", "cert-manager", "kserve", "knative-serving", "knative-operator"):
        assert levels[ns] == "restricted", ns


def test_kueues_names_are_the_ones_that_shipped(dev_plan):
    # URNs and object names of a deployed stack: a new one would make `pulumi up` replace Kueue's objects
    # (and a renamed ClusterQueue would orphan every tenant's LocalQueue and pending workloads).
    found = {(r.type.rsplit(":", 1)[-1], r.name, inputs(r).get("metadata", {}).get("name") or inputs(r).get("name"))
             for r in dev_plan.run.resources if r.name.startswith("primary-kueue")}
    assert found == {
        ("Kueue", "primary-kueue", None),
        ("Namespace", "primary-kueue-namespace", "kueue-system"),
        ("Release", "primary-kueue-release", "kueue"),
        ("ResourceFlavor", "primary-kueue-flavor-default", "default"),
        ("ResourceFlavor", "primary-kueue-flavor-l4", "l4"),
        ("WorkloadPriorityClass", "primary-kueue-priority-platform-high", "platform-high"),
        ("WorkloadPriorityClass", "primary-kueue-priority-platform-normal", "platform-normal"),
        ("WorkloadPriorityClass", "primary-kueue-priority-platform-low", "platform-low"),
        ("ClusterQueue", "primary-kueue-queue-research", "research"),
        ("ClusterQueue", "primary-kueue-queue-recsys", "recsys"),
    }
    (component,) = [r for r in dev_plan.run.resources if r.name == "primary-kueue"]
    assert component.type == "ai-platform:addons:Kueue"
    # The documented priorities tenants' jobs name (README, add-ons table).
    values = {inputs(r)["metadata"]["name"]: inputs(r)["value"] for r in dev_plan.run.resources
              if r.type.endswith(":WorkloadPriorityClass") and r.name.startswith("primary-")}
    assert values == {"platform-high": 1000, "platform-normal": 100, "platform-low": 10}
    assert release(dev_plan.run, "kueue")["namespace"] == "kueue-system"


def test_a_tenants_cluster_queue_admits_its_namespace_within_its_quota():
    from components.addons.kueue import TenantQuota, cluster_queue_spec, flavor_spec
    from stacks.rbac import labels_match

    spot = Taint("kubernetes.azure.com/scalesetpriority", "spot")
    pools = (_pool("a100", 8, 2), GpuPool("l4", "m", 1, "l4", 0, 4, "spot", 100, Taint("nvidia.com/gpu", "true"),
                                          extra_taints=(spot,)))
    spec = cluster_queue_spec(TenantQuota("research", gpus=5, borrow_gpus=2, cpu="16", memory="64Gi"), pools)
    # Only the tenant's own namespace submits to it.
    assert labels_match(spec["namespaceSelector"], {"kubernetes.io/metadata.name": "research"})
    assert not labels_match(spec["namespaceSelector"], {"kubernetes.io/metadata.name": "recsys"})
    # A large job that does not fit yet does not hold back smaller ones behind it.
    assert spec["queueingStrategy"] == "BestEffortFIFO"
    # Idle quota of the cohort is lent, and reclaimed from any borrower; inside the queue, priority decides.
    assert spec["preemption"] == {"reclaimWithinCohort": "Any", "withinClusterQueue": "LowerPriority"}
    assert spec["fairSharing"]["weight"] == 1
    cpu_group, gpu_group = spec["resourceGroups"]
    assert cpu_group["coveredResources"] == ["cpu", "memory"]
    assert {r["name"]: r["nominalQuota"] for r in cpu_group["flavors"][0]["resources"]} == {"cpu": "16",
                                                                                            "memory": "64Gi"}
    assert gpu_group["coveredResources"] == ["nvidia.com/gpu"]
    gpu = {f["name"]: f["resources"][0] for f in gpu_group["flavors"]}
    assert set(gpu) == {"a100", "l4"} and all(r["name"] == "nvidia.com/gpu" for r in gpu.values())
    assert sum(r["nominalQuota"] for r in gpu.values()) == 5 and all(r["borrowingLimit"] == 2 for r in gpu.values())
    # A CPU-only cluster (a dedicated manager) has no GPU group at all.
    assert len(cluster_queue_spec(TenantQuota("research", 5, 2, "16", "64Gi"), ())["resourceGroups"]) == 1
    # Admitted pods land on the flavor's pool and tolerate every taint it carries, the cloud's own included.
    flavor = flavor_spec(pools[1])
    assert flavor["nodeLabels"] == {"ai-platform.io/pool": "l4"}
    assert flavor["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
                                     {"key": "kubernetes.azure.com/scalesetpriority", "operator": "Exists",
                                      "effect": "NoSchedule"}]


def test_a_multikueue_managers_kueue_tries_one_worker_at_a_time_and_a_workers_kueue_dispatches_nothing():
    import pulumi
    import pulumi_kubernetes as k8s

    from components.addons.kueue import Kueue

    from .conftest import run_component

    class System:  # what Kueue asks of a cluster: where the platform's controllers run
        system_node_labels = {"ai-platform.io/pool": "system"}
        system_taints = (Taint("CriticalAddonsOnly", "true"),)
        nodes_ready: list = []
        gpu_pools: tuple = ()

    from components.addons.kueue import TenantQuota

    def program():
        provider = k8s.Provider("k8s", kubeconfig="{}")
        for name, manager in (("manager-kueue", True), ("primary-kueue", False)):
            Kueue(name, System(), (TenantQuota("research", 2, 0, "8", "32Gi"),), multikueue_manager=manager,
                  replicas=2 if manager else 1, metrics=manager, opts=pulumi.ResourceOptions(provider=provider))

    run = run_component(program)
    configs = {r.name: yaml.safe_load(inputs(r)["values"]["managerConfig"]["controllerManagerConfigYaml"])
               for r in run.by_type(RELEASE)}
    values = {r.name: inputs(r)["values"] for r in run.by_type(RELEASE)}
    ha, single = values["manager-kueue-release"], values["primary-kueue-release"]
    # Controllers run on the system pool, tolerating its taint; two replicas keep one through a drain.
    assert ha["controllerManager"]["nodeSelector"] == {"ai-platform.io/pool": "system"}
    assert ha["controllerManager"]["tolerations"][0]["key"] == "CriticalAddonsOnly"
    assert (ha["controllerManager"]["replicas"], ha["controllerManager"]["podDisruptionBudget"]) == (
        2, {"enabled": True, "minAvailable": 1})
    assert (single["controllerManager"]["replicas"], single["controllerManager"]["podDisruptionBudget"]["enabled"]) \
        == (1, False)
    (component,) = [r for r in run.resources if r.name == "primary-kueue"]
    assert run.component_outputs[component.urn] == {"clusterQueues": ["research"]}
    # Metrics endpoints (and their ServiceMonitor) only where Prometheus runs.
    assert (ha["enablePrometheus"], single["enablePrometheus"]) == (True, False)
    # The Kueue objects carry their specs (a priority class carries its value instead).
    queue = inputs(run.one("kubernetes:kueue.x-k8s.io/v1beta2:ClusterQueue", "primary-kueue-queue-research"))
    assert queue["spec"]["namespaceSelector"] and queue["spec"]["resourceGroups"]
    assert inputs(run.one("kubernetes:kueue.x-k8s.io/v1beta2:ResourceFlavor", "primary-kueue-flavor-default"))[
        "spec"] == {}
    high = inputs(run.one("kubernetes:kueue.x-k8s.io/v1beta2:WorkloadPriorityClass",
                          "primary-kueue-priority-platform-high"))
    assert "spec" not in high and high["value"] > 0
    # Kueue 0.19's Incremental dispatcher at step 1: the primary alone first, then the burst cluster.
    assert configs["manager-kueue-release"]["multiKueue"] == {
        "dispatcherName": "kueue.x-k8s.io/multikueue-dispatcher-incremental",
        "incrementalDispatcherConfig": {"stepSize": 1}}
    assert "multiKueue" not in configs["primary-kueue-release"]
    for config in configs.values():  # the rest is the same Configuration on both
        assert config["manageJobsWithoutQueueName"] is True and config["kind"] == "Configuration"


def test_a_single_one_gpu_node_still_gets_the_whole_quota():
    # The smallest pool there is (max 1 node of 1 GPU): its one GPU is the tenant's.
    assert split_gpus(1, (_pool("l4", 1, 1),)) == {"l4": 1}
    assert split_gpus(0, (_pool("l4", 1, 1),)) == {"l4": 0}
    assert split_gpus(3, ()) == {}


def test_leftover_gpus_go_to_the_largest_remainders_whatever_the_pool_order():
    # 1 GPU over capacities 1 and 3: the 0.75 share rounds up, not the first pool listed.
    assert split_gpus(1, (_pool("a", 1, 1), _pool("b", 1, 3))) == {"a": 0, "b": 1}
    # A tie is broken by pool name, so reordering pools in the stack file moves no quota.
    for pools in ((_pool("b", 1, 2), _pool("a", 1, 2)), (_pool("a", 1, 2), _pool("b", 1, 2))):
        assert split_gpus(1, pools) == {"a": 1, "b": 0}
