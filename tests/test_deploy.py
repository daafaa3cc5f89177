"""What `pulumi up` would hit: the pinned charts rendered with our values must be admitted
and scheduled, and the cloud settings must be ones the clouds accept and act on."""

from __future__ import annotations

import json

import pytest
import yaml

from components.addons import observability
from components.clusters.aks import AksCluster, AksClusterArgs
from components.clusters.base import GpuPoolError, GpuPoolSpec, GpuSharing, NetworkSpec, resolve_gpu_pool
from components.clusters.eks import EksCluster, EksClusterArgs
from stacks import render
from stacks.config import ConfigError, parse, physical_name

from .conftest import CLOUD_STACKS, inputs, plan_config, run_component

RELEASE = "kubernetes:helm.sh/v3:Release"


def release(run, chart: str, cluster: str = "primary") -> dict:
    return next(inputs(r) for r in run.by_type(RELEASE)
                if inputs(r)["chart"].endswith(chart) and r.name.startswith(f"{cluster}-"))


@pytest.fixture(scope="module")
def charts(upstream):
    if not (upstream / "charts-src").is_dir():
        pytest.skip("no chart sources in the upstream data")
    return upstream


# -- every release renders, is admitted and scheduled, on every cloud -------------------------


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_release_renders_and_its_pods_are_admitted_and_scheduled(stack, dev_plan, prod_plan, charts):
    result = {"dev": dev_plan, "prod": prod_plan}[stack]
    rendered = render.check(result.run, charts)
    assert rendered.findings == []
    assert rendered.releases == len(result.run.by_type(RELEASE)) and rendered.pods > 20


@pytest.mark.parametrize("cloud", sorted(CLOUD_STACKS))
def test_every_cloud_example_renders_clean(cloud, cloud_plans, charts):
    rendered = render.check(cloud_plans[cloud].run, charts)
    assert rendered.findings == [] and rendered.releases > 0
    assert cloud_plans[cloud].exit_code == 0


def test_knative_operator_pods_pass_pod_security_restricted(dev_plan, charts):
    values = release(dev_plan.run, "knative-operator")
    docs = render.render_release(charts, values)
    pods = [(d["metadata"]["name"], p) for d in docs for p in render.pod_specs(d)]
    assert {n for n, _ in pods} == {"knative-operator", "operator-webhook"}
    assert all(render.pss_problems(p, "restricted") == [] for _, p in pods)
    # The chart's own defaults are refused: this is what the values fix.
    bare = render.render_release(charts, {**values, "values": {}})
    assert all(render.pss_problems(p, "restricted") for d in bare for p in render.pod_specs(d))


def test_the_checker_names_what_pod_security_refuses():
    pod = {"containers": [{"name": "c", "securityContext": {"allowPrivilegeEscalation": False,
                                                            "capabilities": {"drop": ["ALL"]}}}],
           "securityContext": {"runAsNonRoot": True}}
    assert render.pss_problems(pod, "restricted") == ["container 'c' needs seccompProfile RuntimeDefault (pod or container)"]
    pod["securityContext"]["seccompProfile"] = {"type": "RuntimeDefault"}
    assert render.pss_problems(pod, "restricted") == []
    assert render.pss_problems({**pod, "hostNetwork": True}, "baseline") == ["hostNetwork: true"]


def test_scheduling_needs_every_taint_tolerated():
    spot_gpu = render.Pool("t4", {"ai-platform.io/pool": "t4"}, (("nvidia.com/gpu", "present", "NoSchedule"),
                                                                   ("kubernetes.azure.com/scalesetpriority", "spot",
                                                                    "NoSchedule")))
    gpu_only = {"tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]}
    assert not render.fits(gpu_only, spot_gpu)
    both = {"tolerations": [*gpu_only["tolerations"], {"key": "kubernetes.azure.com/scalesetpriority",
                                                        "operator": "Exists"}]}
    assert render.fits(both, spot_gpu)
    assert not render.fits({**both, "nodeSelector": {"ai-platform.io/pool": "system"}}, spot_gpu)


# -- GKE: critical-priority pods need a scoped quota ------------------------------------------


def test_gke_gets_the_priority_class_quota_the_gpu_operator_needs(cloud_plans):
    run = cloud_plans["gcp"].run
    (quota,) = [inputs(r) for r in run.by_type("kubernetes:core/v1:ResourceQuota")
                if inputs(r)["metadata"]["name"] == "gpu-operator-quota"]
    assert quota["metadata"]["namespace"] == "gpu-operator"
    (expr,) = quota["spec"]["scopeSelector"]["matchExpressions"]
    assert expr["scopeName"] == "PriorityClass" and set(expr["values"]) == {"system-node-critical",
                                                                            "system-cluster-critical"}
    (rel,) = [r for r in run.by_type(RELEASE) if inputs(r)["chart"] == "gpu-operator"]
    assert any(d.endswith("gpu-operator-priority-quota") for d in rel.dependencies)
    # Only GKE needs it.
    assert not [r for r in cloud_plans["aws"].run.by_type("kubernetes:core/v1:ResourceQuota")
                if inputs(r)["metadata"]["name"] == "gpu-operator-quota"]


# -- AKS: node layout, spot pools --------------------------------------------------------------


def test_aks_layout_system_pool_for_the_platform_general_pool_for_tenants(cloud_plans):
    run = cloud_plans["azure"].run
    pools = {inputs(r)["agentPoolName"]: inputs(r) for r in run.by_type("azure-native:containerservice:AgentPool")}
    general = pools["general"]
    assert general["minCount"] == 0 and general["mode"] == "User" and "nodeTaints" not in general
    system = {"ai-platform.io/pool": "system"}
    critical = [{"key": "CriticalAddonsOnly", "operator": "Exists", "effect": "NoSchedule"}]
    kps = release(run, "kube-prometheus-stack")["values"]
    for values in (kps["grafana"], kps["kube-state-metrics"], kps["prometheusOperator"]["admissionWebhooks"]["patch"],
                   release(run, "gpu-operator")["values"]["node-feature-discovery"]["master"],
                   release(run, "gpu-operator")["values"]["node-feature-discovery"]["gc"]):
        assert values["nodeSelector"] == system and values["tolerations"] == critical


def test_aks_spot_taint_is_tolerated_by_kueue_flavors_and_node_agents(cloud_plans):
    run = cloud_plans["azure"].run
    spot = {"key": "kubernetes.azure.com/scalesetpriority", "operator": "Exists", "effect": "NoSchedule"}
    flavors = {inputs(r)["metadata"]["name"]: inputs(r)["spec"] for r in run.by_type("kubernetes:kueue.x-k8s.io/v1beta2:ResourceFlavor")
               if r.name.startswith("primary-")}
    assert spot in flavors["inference"]["tolerations"] and spot not in flavors["training"]["tolerations"]
    gpu = release(run, "gpu-operator")["values"]
    assert spot in gpu["node-feature-discovery"]["worker"]["tolerations"] and spot in gpu["daemonsets"]["tolerations"]


def test_platform_pods_tolerate_exactly_the_system_pools_taint(prod_plan):
    # The system pool is tainted on EKS (primary) and GKE (burst) alike: controllers tolerate that taint only.
    for cluster in ("primary", "burst"):
        values = release(prod_plan.run, "kube-prometheus-stack", cluster)["values"]
        assert values["grafana"]["tolerations"] == [{"key": "CriticalAddonsOnly", "operator": "Exists", "effect": "NoSchedule"}]
        assert values["grafana"]["nodeSelector"] == {"ai-platform.io/pool": "system"}


# -- EKS: NetworkPolicy enforcement and GPU nodes for the autoscaler ---------------------------


@pytest.fixture(scope="module")
def eks():
    holder = {}

    def program():
        holder["c"] = EksCluster("primary", EksClusterArgs(
            cluster_name="acme-test", region="eu-west-1", gpu_driver="gpu-operator",
            gpu_pools=(GpuPoolSpec(name="l4", machine_type="g6.12xlarge", capacity="spot", min=0, max=3,
                                   sharing=GpuSharing(mode="time-slicing", replicas=4)),)))

    return run_component(program)


def test_eks_enforces_network_policy_with_the_vpc_cni_addon(eks):
    (addon,) = [inputs(r) for r in eks.by_type("aws:eks/addon:Addon") if inputs(r)["addonName"] == "vpc-cni"]
    assert json.loads(addon["configurationValues"]) == {"enableNetworkPolicy": "true"}


def test_eks_gpu_nodes_carry_the_autoscaler_accelerator_label_and_advertise_slices(eks):
    (group,) = [inputs(r) for r in eks.by_type("aws:eks/nodeGroup:NodeGroup") if r.name == "primary-l4"]
    assert group["labels"]["k8s.amazonaws.com/accelerator"] == "nvidia-l4"
    tags = {inputs(r)["tag"]["key"]: inputs(r)["tag"]["value"] for r in eks.by_type("aws:autoscaling/tag:Tag")}
    assert tags["k8s.io/cluster-autoscaler/node-template/label/k8s.amazonaws.com/accelerator"] == "nvidia-l4"
    # 4 L4s x 4 time slices: what the node advertises once the device plugin runs.
    assert tags["k8s.io/cluster-autoscaler/node-template/resources/nvidia.com/gpu"] == "16"


# -- AKS: the upgrade channel owns the version -------------------------------------------------


@pytest.mark.parametrize(("channel", "ignored"), [("stable", True), ("rapid", True), ("patch", False)])
def test_aks_minor_auto_upgrades_are_not_undone_by_the_next_up(channel, ignored):
    run = run_component(lambda: AksCluster("primary", AksClusterArgs(
        cluster_name="acme-aks", region="westeurope", network=NetworkSpec(zones=2), upgrade_channel=channel)))
    cluster = run.one("azure-native:containerservice:ManagedCluster", "primary-aks")
    assert ("kubernetesVersion" in cluster.ignore_changes) is ignored


# -- names and labels the clouds accept ------------------------------------------------------------


def test_stack_names_with_underscores_and_dots_give_valid_cluster_names():
    name = physical_name("ai-platform", "research_eu.v2", "primary")
    assert name == "ai-platform-research-eu-v2-primary"
    config = parse({"environment": "dev", "clusters": [{"name": "primary", "cloud": "gcp", "region": "us-central1",
                                                         "project": "acme-ml"}]})
    from stacks.config import cluster_args

    assert cluster_args(config, config.primary, "ai-platform", "research_eu").cluster_name == "ai-platform-research-eu-primary"


def test_gcp_labels_the_cloud_refuses_are_a_config_error():
    with pytest.raises(ConfigError) as exc:
        parse({"environment": "dev", "clusters": [{"name": "primary", "cloud": "gcp", "region": "us-central1",
                                                    "project": "acme-ml", "tags": {"owner": "ml-platform@acme.example"}}]})
    ((path, message),) = exc.value.problems
    assert path == "ai-platform:clusters[0].tags" and "owner='ml-platform@acme.example'" in message
    # The same tag is fine on AWS.
    parse({"environment": "dev", "clusters": [{"name": "primary", "cloud": "aws", "region": "us-west-2",
                                                "tags": {"owner": "ml-platform@acme.example"}}]})


# -- MIG profiles and the GPU quota unit -----------------------------------------------------------


@pytest.mark.parametrize(("machine", "profile", "ok"), [
    ("p5.48xlarge", "all-3g.40gb", True), ("p5.48xlarge", "all-3g.20gb", False), ("p4d.24xlarge", "all-3g.20gb", True),
    ("p4d.24xlarge", "all-7g.999gb", False), ("p4de.24xlarge", "all-1g.10gb", True), ("p5e.48xlarge", "all-1g.18gb", True),
])
def test_mig_profiles_are_checked_against_the_gpu(machine, profile, ok):
    spec = GpuPoolSpec(name="p", machine_type=machine, sharing=GpuSharing(mode="mig", profile=profile))
    if ok:
        resolve_gpu_pool("aws", spec, "gpu-operator")
    else:
        with pytest.raises(GpuPoolError, match="no MIG profile"):
            resolve_gpu_pool("aws", spec, "gpu-operator")


def test_quota_unit_is_what_nodes_advertise():
    mig = resolve_gpu_pool("aws", GpuPoolSpec(name="a", machine_type="p4d.24xlarge", max=2,
                                              sharing=GpuSharing(mode="mig", profile="all-1g.5gb")), "gpu-operator")
    assert (mig.devices_per_gpu, mig.devices, mig.capacity_devices) == (7, 56, 112)
    sliced = resolve_gpu_pool("aws", GpuPoolSpec(name="l", machine_type="g6.xlarge", max=3,
                                                 sharing=GpuSharing(mode="time-slicing", replicas=4)), "gpu-operator")
    assert sliced.capacity_devices == 12
    # 12 sliced L4 units fit 12 guaranteed; 13 do not.
    raw = {"environment": "dev", "clusters": [{"name": "primary", "cloud": "aws", "region": "us-west-2", "gpuPools": [
        {"name": "l", "machineType": "g6.xlarge", "max": 3, "sharing": {"mode": "time-slicing", "replicas": 4}}]}]}
    parse({**raw, "tenants": [{"name": "a", "gpus": 12}]})
    with pytest.raises(ConfigError, match="at most 12"):
        parse({**raw, "tenants": [{"name": "a", "gpus": 13}]})


def test_guaranteed_gpus_on_a_cluster_without_gpu_pools_are_a_config_error():
    with pytest.raises(ConfigError) as exc:
        parse({"environment": "dev", "clusters": [{"name": "primary", "cloud": "aws", "region": "us-west-2"}],
               "tenants": [{"name": "a", "gpus": 2}]})
    assert exc.value.problems[0][0] == "ai-platform:clusters[0].gpuPools"


# -- GPU metrics that name the workload, alerts that stop ------------------------------------------


def test_xid_alert_fires_on_a_new_error_not_forever():
    (rule,) = [r for g in observability.GPU_RULES for r in g["rules"] if r["alert"] == "GpuXidError"]
    assert "changes(DCGM_FI_DEV_XID_ERRORS[" in rule["expr"] and "!= 0" in rule["expr"]


def test_two_objects_with_one_identity_on_a_cluster_fail_the_plan(tmp_path):
    # With manager: primary, tenant `vision`'s burst queue is the ClusterQueue `vision-burst`.
    result = plan_config(tmp_path, {
        "environment": "dev",
        "clusters": [{"name": "primary", "cloud": "aws", "region": "us-west-2",
                      "gpuPools": [{"name": "l4", "machineType": "g6.xlarge", "max": 4}]},
                     {"name": "burst", "role": "burst", "cloud": "gcp", "project": "acme-ml", "region": "us-central1",
                      "endpoint": {"public": True, "authorizedNetworks": ["198.51.100.0/28"]},
                      "gpuPools": [{"name": "l4", "machineType": "g2-standard-8", "max": 4}]}],
        "bursting": {"enabled": True, "manager": "primary"},
        "tenants": [{"name": "vision", "gpus": 1}, {"name": "vision-burst", "gpus": 1}],
    })
    assert result.exit_code == 1
    dupes = [f for f in result.findings if "is also declared by" in f.reason]
    assert dupes and all(f.reason.startswith("ClusterQueue vision-burst") for f in dupes)


def test_the_incremental_dispatcher_tries_the_primary_alone_first(prod_plan):
    import yaml

    config = yaml.safe_load(release(prod_plan.run, "kueue", "manager")["values"]["managerConfig"]["controllerManagerConfigYaml"])
    assert config["multiKueue"] == {"dispatcherName": "kueue.x-k8s.io/multikueue-dispatcher-incremental",
                                    "incrementalDispatcherConfig": {"stepSize": 1}}


# -- config that cannot work is refused before anything is registered -------------------------

KIND = "examples/kind-kubeconfig.yaml"


def _existing(**cluster) -> dict:
    return {"environment": "dev", "clusters": [{"name": "primary", "cloud": "existing", **cluster}]}


def test_an_existing_clusters_context_must_be_in_its_kubeconfig(monkeypatch):
    from .conftest import REPO

    monkeypatch.chdir(REPO)
    parse(_existing(kubeconfigPath=KIND, context="kind-ai-platform"))
    with pytest.raises(ConfigError) as exc:
        parse(_existing(kubeconfigPath=KIND, context="kind-other"))
    assert exc.value.problems == [("ai-platform:clusters[0].context",
                                   "context 'kind-other' is not in the kubeconfig (it has: kind-ai-platform)")]


def test_an_inline_kubeconfig_with_credentials_must_be_a_secret():
    kubeconfig = json.dumps({"apiVersion": "v1", "kind": "Config", "current-context": "c",
                             "clusters": [{"name": "c", "cluster": {"server": "https://10.0.0.1"}}],
                             "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
                             "users": [{"name": "u", "user": {"token": "abc"}}]})
    with pytest.raises(ConfigError) as exc:
        parse(_existing(kubeconfig=kubeconfig), secret_keys=set())
    ((path, message),) = exc.value.problems
    assert path == "ai-platform:clusters[0].kubeconfig" and "--secret --path 'clusters[0].kubeconfig'" in message
    parse(_existing(kubeconfig=kubeconfig), secret_keys={"clusters"})


def test_a_misspelt_config_namespace_is_an_error_with_a_suggestion(tmp_path):
    path = tmp_path / "Pulumi.typo.yaml"
    path.write_text("config:\n  ai-platform:environment: dev\n  ai-platform:clusters: [{name: primary, cloud: aws, "
                    "region: us-west-2}]\n  ai-platfrom:tenants: [{name: research, gpus: 0}]\n  aws:region: us-west-2\n")
    from stacks import plan as plan_mod

    result = plan_mod.plan(config_file=path)
    assert result.exit_code == 2
    assert result.config_errors == ["Pulumi.typo.yaml: ai-platfrom:tenants: unknown config namespace 'ai-platfrom'; "
                                    "did you mean 'ai-platform:tenants'?"]


def test_kserve_waits_for_knative_serving_to_be_ready(dev_plan):
    run = dev_plan.run
    (knative,) = run.by_type("kubernetes:operator.knative.dev/v1beta1:KnativeServing")
    assert inputs(knative)["metadata"]["annotations"] == {"pulumi.com/waitFor": "condition=Ready"}
    (kserve,) = [r for r in run.by_type(RELEASE) if inputs(r)["chart"].endswith("kserve-resources")]
    assert knative.urn in kserve.dependencies


# -- Knative and Prometheus under mesh-wide STRICT mTLS -----------------------------------------


def test_knative_activator_and_autoscaler_carry_sidecars_and_every_workload_sits_on_the_system_pool(cloud_plans):
    run = cloud_plans["azure"].run
    (knative,) = [r for r in run.by_type("kubernetes:operator.knative.dev/v1beta1:KnativeServing")]
    workloads = {w["name"]: w for w in inputs(knative)["spec"]["workloads"]}
    assert {"activator", "autoscaler", "controller", "webhook"} <= set(workloads)
    injected = {n for n, w in workloads.items() if w.get("labels", {}).get("sidecar.istio.io/inject") == "true"}
    assert injected == {"activator", "autoscaler"}  # webhooks are called by the API server without mTLS
    for w in workloads.values():
        assert w["nodeSelector"] == {"ai-platform.io/pool": "system"}
        assert w["tolerations"] == [{"key": "CriticalAddonsOnly", "operator": "Exists", "effect": "NoSchedule"}]


def test_tenant_authorization_names_only_callers_with_a_mesh_identity(prod_plan):
    for r in prod_plan.run.by_type("kubernetes:security.istio.io/v1:AuthorizationPolicy"):
        spec = inputs(r)["spec"]
        ns = inputs(r)["metadata"]["namespace"]
        assert spec["rules"][0]["from"][0]["source"]["namespaces"] == [ns, "istio-system", "knative-serving"]
    # Prometheus (no sidecar) still reaches tenant pods through the network policy, on the
    # sidecar's merged-metrics port that mTLS does not cover.
    policies = [inputs(r) for r in prod_plan.run.by_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
                if inputs(r)["metadata"]["name"] == "allow-platform"]
    peers = {p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
             for pol in policies for p in pol["spec"]["ingress"][0]["from"]}
    assert "monitoring" in peers


def test_prometheus_scrapes_sidecars_merged_metrics(prod_plan):
    (monitor,) = [inputs(r) for r in prod_plan.run.by_type("kubernetes:monitoring.coreos.com/v1:PodMonitor")
                  if r.name.startswith("primary-")]
    assert monitor["spec"]["namespaceSelector"] == {"any": True}
    relabel = monitor["spec"]["podMetricsEndpoints"][0]["relabelings"]
    assert relabel[0]["regex"] == "istio-proxy" and relabel[-1]["targetLabel"] == "__address__"


def test_injected_sidecars_pass_pod_security_restricted(dev_plan, charts):
    values = release(dev_plan.run, "istiod")
    docs = render.render_release(charts, values)
    (injector,) = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "istio-sidecar-injector"]
    injected = json.loads(injector["data"]["values"])
    # The CNI node agent (no NET_ADMIN in the pod) and RuntimeDefault seccomp on the sidecar.
    assert injected["pilot"]["cni"]["enabled"] is True
    assert injected["global"]["proxy"]["seccompProfile"] == {"type": "RuntimeDefault"}


def test_tenants_reach_only_istiods_secure_port_and_ingresses_program_nothing(prod_plan, charts):
    # Tenant egress into the mesh namespace: istiod's pods, mTLS xDS/CA port only.
    values = release(prod_plan.run, "istiod")
    docs = render.render_release(charts, values)
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    istiod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    ports = {p["containerPort"] for p in deployment["spec"]["template"]["spec"]["containers"][0]["ports"]}
    policies = [inputs(r) for r in prod_plan.run.by_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
                if inputs(r)["metadata"]["name"] == "allow-platform"]
    assert policies
    for policy in policies:
        (rule,) = policy["spec"]["egress"]
        (peer,) = rule["to"]
        assert peer["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "istio-system"}
        assert peer["podSelector"]["matchLabels"].items() <= istiod_labels.items()
        assert rule["ports"] == [{"protocol": "TCP", "port": 15012}] and 15012 in ports
    # istiod serves no /debug on 8080, and readiness still works there.
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "ENABLE_DEBUG_ON_HTTP", "value": "false"} in container["env"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": 8080}
    # Kubernetes Ingresses (which the built-in admin role lets a tenant create) program no gateway.
    (mesh,) = [yaml.safe_load(d["data"]["mesh"]) for d in docs
               if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "istio"]
    assert mesh["ingressControllerMode"] == "OFF"


def test_kueue_manages_every_job_and_pod_in_tenant_namespaces_and_nothing_else(prod_plan, charts):
    # Without this a tenant runs GPU pods with no queue label outside Kueue, up to its namespace quota.
    values = release(prod_plan.run, "kueue")
    config = yaml.safe_load(values["values"]["managerConfig"]["controllerManagerConfigYaml"])
    tenant_selector = {"matchExpressions": [{"key": "ai-platform.io/tenant", "operator": "Exists"}]}
    assert config["manageJobsWithoutQueueName"] is True
    assert config["managedJobsNamespaceSelector"] == tenant_selector
    docs = render.render_release(charts, values)
    (mutating,) = [d for d in docs if d["kind"] == "MutatingWebhookConfiguration"]
    pod_hooks = [w for w in mutating["webhooks"] if "pod" in w["name"] or "deployment" in w["name"]]
    assert pod_hooks and all(w["namespaceSelector"] == tenant_selector for w in pod_hooks)
    # Tenant namespaces carry the label; platform namespaces do not, so their pods are never gated.
    namespaces = {inputs(r)["metadata"]["name"]: inputs(r)["metadata"].get("labels") or {}
                  for r in prod_plan.run.by_type("kubernetes:core/v1:Namespace") if r.name.startswith("primary-")}
    tenants = {t for t, labels in namespaces.items() if "ai-platform.io/tenant" in labels}
    assert tenants and "kueue-system" in namespaces and "kueue-system" not in tenants
    assert not tenants & {"kube-system", "monitoring", "istio-system", "kserve"}


def test_node_exporter_preempts_tenant_pods_and_gke_admits_it(cloud_plans, charts):
    # Tenants run at priority 0 (admission); a node agent on their full nodes must still get its place.
    run = cloud_plans["gcp"].run
    docs = render.render_release(charts, release(run, "kube-prometheus-stack"))
    (exporter,) = [d for d in docs if d["kind"] == "DaemonSet" and "node-exporter" in d["metadata"]["name"]]
    assert exporter["spec"]["template"]["spec"]["priorityClassName"] == "system-node-critical"
    # GKE admits critical pods outside kube-system only with a quota scoped to the class.
    quotas = [inputs(r)["spec"] for r in run.by_type("kubernetes:core/v1:ResourceQuota")
              if inputs(r)["metadata"]["namespace"] == "monitoring"]
    assert any(e["values"] and "system-node-critical" in e["values"]
               for q in quotas for e in q["scopeSelector"]["matchExpressions"])
