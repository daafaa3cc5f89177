"""Cloud bursting with Kueue MultiKueue: the prod stack (AWS primary, GCP burst, dedicated
manager), the primary-as-manager placement, and every pair of clouds."""

from __future__ import annotations

import base64
import json

import pytest
import yaml

from components.addons.kueue import FRAMEWORKS
from components.bursting import WORKER_RULES, scale_quantity
from stacks import plan as plan_mod
from stacks.engine import is_secret, plain
from stacks.rbac import labels_match

from .conftest import FIXTURES, REPO, inputs, plan_config

KUEUE = "kubernetes:kueue.x-k8s.io/v1beta2:"


def objects(run, kind: str, cluster: str | None = None) -> dict[str, dict]:
    return {inputs(r)["metadata"]["name"]: inputs(r) for r in run.resources
            if r.type == f"{KUEUE}{kind}" and (cluster is None or r.name.startswith(f"{cluster}-"))}


def component(run, type_token: str, name: str):
    return next(r for r in run.registrations if r.type == type_token and r.name == name)


def test_prod_bursts_from_aws_to_gcp_through_a_dedicated_manager(prod_plan):
    run = prod_plan.run
    clusters = {r.name: r for r in run.registrations if r.type.startswith("ai-platform:clusters:")}
    assert {n: r.type.rsplit(":", 1)[-1] for n, r in clusters.items()} == {
        "primary": "EksCluster", "burst": "GkeCluster", "manager": "EksCluster"}
    # The manager is small and CPU-only.
    groups = [inputs(r) for r in run.by_type("aws:eks/nodeGroup:NodeGroup") if r.name.startswith("manager-")]
    assert [g["amiType"] for g in groups] == ["AL2023_x86_64_STANDARD"]
    assert prod_plan.exit_code == 0


def test_the_incremental_dispatcher_nominates_the_primary_first(prod_plan):
    run = prod_plan.run
    config = objects(run, "MultiKueueConfig", "manager")["multikueue"]
    assert config["spec"]["clusters"] == ["primary", "burst"]
    values = next(inputs(r) for r in run.by_type("kubernetes:helm.sh/v3:Release")
                  if r.name == "manager-kueue-release")["values"]
    manager_config = yaml.safe_load(values["managerConfig"]["controllerManagerConfigYaml"])
    assert manager_config["multiKueue"]["dispatcherName"] == "kueue.x-k8s.io/multikueue-dispatcher-incremental"
    assert "multiKueue" not in yaml.safe_load(next(
        inputs(r) for r in run.by_type("kubernetes:helm.sh/v3:Release") if r.name == "primary-kueue-release"
    )["values"]["managerConfig"]["controllerManagerConfigYaml"])
    check = objects(run, "AdmissionCheck", "manager")["multikueue"]
    assert check["spec"] == {"controllerName": "kueue.x-k8s.io/multikueue", "parameters": {
        "apiGroup": "kueue.x-k8s.io", "kind": "MultiKueueConfig", "name": "multikueue"}}


def test_every_worker_has_a_multikueue_cluster_with_its_secret_kubeconfig(prod_plan):
    run = prod_plan.run
    clusters = objects(run, "MultiKueueCluster", "manager")
    assert set(clusters) == {"primary", "burst"}
    secrets = {inputs(r)["metadata"]["name"]: r for r in run.by_type("kubernetes:core/v1:Secret")
               if r.name.startswith("manager-multikueue-")}
    for worker, obj in clusters.items():
        source = obj["spec"]["clusterSource"]["kubeConfig"]
        assert source["location"] == f"multikueue-{worker}"
        secret = secrets[source["location"]]
        # Kueue reads these Secrets from its own namespace: where the manager's Kueue release runs.
        kueue_ns = next(inputs(r)["namespace"] for r in run.by_type("kubernetes:helm.sh/v3:Release")
                        if r.name.startswith("manager-") and inputs(r)["chart"].endswith("kueue"))
        assert source["locationType"] == "Secret" and inputs(secret)["metadata"]["namespace"] == kueue_ns
        data = secret.inputs["stringData"]
        assert is_secret(data) or is_secret(data["kubeconfig"])
        kubeconfig = json.loads(plain(data)["kubeconfig"])
        user = kubeconfig["users"][0]["user"]
        # A plain bearer token: the manager cannot run a cloud CLI.
        assert set(user) == {"token"} and user["token"].startswith("eyJ")
        assert "exec" not in json.dumps(kubeconfig)
        assert kubeconfig["clusters"][0]["cluster"]["server"].startswith("https://")
        assert kubeconfig["clusters"][0]["cluster"]["certificate-authority-data"]


def _kind_of(framework: str) -> tuple[str, str]:
    """(API group, resource) of a Kueue integration name: `batch/job` -> (batch, jobs)."""
    builtin = {"pod": ("", "pods"), "statefulset": ("apps", "statefulsets"), "deployment": ("apps", "deployments")}
    if framework in builtin:
        return builtin[framework]
    group, _, kind = framework.rpartition("/")
    return group, f"{kind}s"


def _rules(rules: list[dict]) -> set[tuple[str, str, frozenset]]:
    return {(g, r, frozenset(rule["verbs"])) for rule in rules for g in rule["apiGroups"] for r in rule["resources"]}


def kueues_worker_rules() -> set[tuple[str, str, frozenset]]:
    """Kueue's own worker role (its create-multikueue-kubeconfig.sh) for the integrations we enable."""
    upstream = yaml.safe_load((FIXTURES / "kueue-0.19.2-multikueue-worker-role.yaml").read_text())["rules"]
    kinds = {_kind_of(f) for f in FRAMEWORKS}
    return {rule for rule in _rules(upstream)
            if rule[0] == "kueue.x-k8s.io" or (rule[0], rule[1].split("/")[0]) in kinds}


def test_worker_role_is_kueues_own_for_every_integration_we_enable():
    expected = kueues_worker_rules()
    ours = _rules(WORKER_RULES)
    # Kueue's script has no TrainJob rules although Kueue dispatches TrainJobs: same verbs as other jobs.
    trainjob = {r for r in ours if r[0] == "trainer.kubeflow.org"}
    assert ours - trainjob == expected
    assert {r[1] for r in trainjob} == {"trainjobs", "trainjobs/status"}
    # Deployments have no MultiKueue adapter: never dispatched, no access.
    assert not {r for r in ours if r[1].startswith("deployments")}


def test_worker_rbac_is_exactly_what_multikueue_needs_and_writes_only_in_tenant_namespaces(prod_plan):
    run = prod_plan.run
    tenants = {t["name"] for t in yaml.safe_load((REPO / "Pulumi.prod.yaml").read_text())["config"]["ai-platform:tenants"]}
    for worker in ("primary", "burst"):
        roles = {inputs(r)["metadata"]["name"]: inputs(r)["rules"]
                 for r in run.by_type("kubernetes:rbac.authorization.k8s.io/v1:ClusterRole")
                 if r.name.startswith(f"{worker}-multikueue-access")}
        read, write = roles["multikueue-sa-role"], roles["multikueue-sa-write"]
        # Together exactly Kueue's own worker rules (TrainJob aside, see above); apart, reads and writes.
        together: dict[tuple[str, str], set] = {}
        for g, r, verbs in _rules(read) | _rules(write):
            together.setdefault((g, r), set()).update(verbs)
        deployed = {(g, r, frozenset(v)) for (g, r), v in together.items() if g != "trainer.kubeflow.org"}
        assert deployed == kueues_worker_rules()
        assert all(set(rule["verbs"]) <= {"get", "list", "watch"} for rule in read)
        assert not any({"get", "list", "watch"} & set(rule["verbs"]) for rule in write)
        assert not any("*" in json.dumps(rule) for rule in read + write)
        sa = [{"kind": "ServiceAccount", "name": "multikueue-sa", "namespace": "kueue-system"}]
        # Cluster-wide: only the read role (MultiKueue's watch spans namespaces).
        (crb,) = [inputs(r) for r in run.by_type("kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding")
                  if r.name.startswith(f"{worker}-multikueue-access")]
        assert crb["subjects"] == sa and crb["roleRef"]["name"] == "multikueue-sa-role"
        # Writes: one RoleBinding per tenant namespace, never kube-system or a platform namespace.
        bindings = [inputs(r) for r in run.by_type("kubernetes:rbac.authorization.k8s.io/v1:RoleBinding")
                    if r.name.startswith(f"{worker}-multikueue-access")]
        assert {b["metadata"]["namespace"] for b in bindings} == tenants
        assert all(b["subjects"] == sa and b["roleRef"]["name"] == "multikueue-sa-write" for b in bindings)
        (token,) = [inputs(r) for r in run.by_type("kubernetes:core/v1:Secret")
                    if r.name.startswith(f"{worker}-multikueue-access")]
        assert token["type"] == "kubernetes.io/service-account-token"
        assert token["metadata"]["annotations"] == {"kubernetes.io/service-account.name": "multikueue-sa"}
        assert token["metadata"]["name"] == "multikueue-sa-token-1"


def test_raising_the_token_generation_replaces_every_workers_token(tmp_path):
    from .conftest import plan_config

    cfg = {k.removeprefix("ai-platform:"): v
           for k, v in yaml.safe_load((REPO / "Pulumi.prod.yaml").read_text())["config"].items()}
    cfg["bursting"] = {**cfg["bursting"], "workerTokenGeneration": 2}
    result = plan_config(tmp_path, cfg)
    names = {inputs(r)["metadata"]["name"] for r in result.run.by_type("kubernetes:core/v1:Secret")
             if "-multikueue-access" in r.name}
    assert names == {"multikueue-sa-token-2"}


def test_manager_queues_respect_multikueue_constraints_and_sum_the_workers_quota(prod_plan):
    run = prod_plan.run
    checks = {n for n, c in objects(run, "AdmissionCheck").items()
              if c["spec"]["controllerName"] == "kueue.x-k8s.io/multikueue"}
    tenants = {t["name"]: t for t in yaml.safe_load((REPO / "Pulumi.prod.yaml").read_text())["config"]["ai-platform:tenants"]}
    for r in run.resources:
        if r.type != f"{KUEUE}ClusterQueue":
            continue
        spec = inputs(r)["spec"]
        mk = [c for c in spec.get("admissionChecksStrategy", {}).get("admissionChecks", []) if c["name"] in checks]
        assert len(mk) <= 1 and not any(c.get("onFlavors") for c in mk), r.name
        if r.name.startswith("manager-"):
            t = tenants[inputs(r)["metadata"]["name"]]
            gpu = spec["resourceGroups"][1]["flavors"][0]["resources"][0]
            assert len(mk) == 1
            assert gpu["nominalQuota"] == 2 * t["gpus"]  # primary + burst
            assert spec["resourceGroups"][0]["flavors"][0]["resources"][0]["nominalQuota"] == scale_quantity(t["cpu"], 2)
    assert plan_mod.run_policies(run) == []


def test_every_tenant_exists_on_every_cluster_with_matching_queues(prod_plan):
    run = prod_plan.run
    local = {}
    for r in run.resources:
        if r.type == f"{KUEUE}LocalQueue":
            local.setdefault(r.name.split("-", 1)[0], set()).add(
                (inputs(r)["metadata"]["namespace"], inputs(r)["metadata"]["name"]))
    assert local["primary"] == local["burst"] == local["manager"] == {
        (t, "default") for t in ("research", "recsys", "nlp")}


def test_burst_gpu_pools_scale_from_zero(prod_plan):
    pools = [inputs(r) for r in prod_plan.run.by_type("gcp:container/nodePool:NodePool")
             if inputs(r)["nodeConfig"].get("guestAccelerators")]
    assert pools and all(p["autoscaling"]["totalMinNodeCount"] == 0 for p in pools)


BURST = {"name": "burst", "role": "burst", "endpoint": {"public": True, "authorizedNetworks": ["198.51.100.0/28"]}}
CLOUDS = {
    "aws": {"cloud": "aws", "region": "us-west-2", "gpuPools": [{"name": "l4", "machineType": "g6.xlarge", "max": 4}]},
    "gcp": {"cloud": "gcp", "project": "acme-ml", "region": "us-central1",
            "gpuPools": [{"name": "l4", "machineType": "g2-standard-8", "max": 4}]},
    "azure": {"cloud": "azure", "region": "westeurope",
              "gpuPools": [{"name": "t4", "machineType": "Standard_NC8as_T4_v3", "max": 4}]},
}


@pytest.mark.parametrize(("primary", "burst"), [("aws", "gcp"), ("gcp", "azure"), ("azure", "aws")])
@pytest.mark.parametrize("manager", ["dedicated", "primary"])
def test_any_pair_of_clouds_bursts(tmp_path, primary, burst, manager):
    config = {"environment": "dev", "bursting": {"enabled": True, "manager": manager},
              "clusters": [{"name": "primary", **CLOUDS[primary]}, {**BURST, **CLOUDS[burst]}],
              "tenants": [{"name": "research", "gpus": 2}]}
    result = plan_config(tmp_path, config, f"{primary}-{burst}-{manager}")
    assert result.exit_code == 0, (result.config_errors, result.violations, result.findings)
    run = result.run
    mk_clusters = objects(run, "MultiKueueCluster")
    assert list(objects(run, "MultiKueueConfig").values())[0]["spec"]["clusters"] == (
        ["primary", "burst"] if manager == "dedicated" else ["burst"])
    assert set(mk_clusters) == ({"primary", "burst"} if manager == "dedicated" else {"burst"})
    if manager == "primary":
        # Tenants keep their queue and gain one that dispatches to the burst cluster.
        queues = {(r.name.split("-", 1)[0], inputs(r)["metadata"]["name"]): inputs(r)["spec"]["clusterQueue"]
                  for r in run.resources if r.type == f"{KUEUE}LocalQueue"}
        assert queues == {("primary", "default"): "research", ("primary", "burst"): "research-burst",
                          ("burst", "default"): "research", ("burst", "burst"): "research"}
    dispatcher = "manager" if manager == "dedicated" else "primary"
    # A dedicated manager shares the primary's NAT on AWS and GCP; on AKS it has its own outbound address.
    egress = _egress(run, dispatcher if primary == "azure" else "primary")
    assert egress and set(egress) <= set(_allow_list(run, "burst")) and "198.51.100.0/28" in _allow_list(run, "burst")
    if dispatcher == "manager":
        _assert_manager_inside_the_primary_network(run, primary)


def _egress(run, cluster: str) -> list[str]:
    """The public addresses a cluster's NAT gives it, as the mocks answer for each cloud."""
    out = []
    for r in run.resources:
        if not r.name.startswith(f"{cluster}-"):
            continue
        if r.type == "aws:ec2/eip:Eip":
            out.append(f"{r.outputs['publicIp']}/32")
        elif r.type == "gcp:compute/address:Address":
            out.append(f"{r.outputs['address']}/32")
    if not out:  # AKS reports its load balancer's outbound addresses on the cluster
        (aks,) = [r for r in run.by_type("azure-native:containerservice:ManagedCluster") if r.name == f"{cluster}-aks"]
        ids = [i["id"] for i in aks.outputs["networkProfile"]["loadBalancerProfile"]["effectiveOutboundIPs"]]
        from stacks.mocks import PlatformMocks

        out = [f"{PlatformMocks().call(_Call(i.rsplit('/', 1)[-1]))['ipAddress']}/32" for i in ids]
    return out


class _Call:
    def __init__(self, name: str):
        self.token, self.provider = "azure-native:network:getPublicIPAddress", None
        self.args = {"publicIpAddressName": name}


def _allow_list(run, cluster: str) -> list[str]:
    for r in run.resources:
        p = inputs(r)
        if r.name == f"{cluster}-eks":
            return p["vpcConfig"]["publicAccessCidrs"]
        if r.name == f"{cluster}-gke":
            return [c["cidrBlock"] for c in p["masterAuthorizedNetworksConfig"]["cidrBlocks"]]
        if r.name == f"{cluster}-aks":
            return p["apiServerAccessProfile"]["authorizedIPRanges"]
    raise KeyError(cluster)


def _assert_manager_inside_the_primary_network(run, cloud: str) -> None:
    names = {r.name for r in run.resources}
    if cloud == "aws":
        assert "manager-vpc" not in names and "manager-nat-0" not in names
        primary = {r.urn for r in run.resources if r.type == "aws:ec2/subnet:Subnet" and r.name.startswith("primary-private")}
        (eks,) = [r for r in run.resources if r.name == "manager-eks"]
        assert len(inputs(eks)["vpcConfig"]["subnetIds"]) == len(primary)
        assert {d for d in eks.dependencies if ":Subnet::" in d} == primary
        (rule,) = [r for r in run.resources if r.type == "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"]
        p = inputs(rule)
        assert (p["fromPort"], p["toPort"], p["ipProtocol"]) == (443, 443, "tcp")
        assert p["securityGroupId"] == next(r for r in run.resources if r.name == "primary-eks").outputs[
            "vpcConfig"]["clusterSecurityGroupId"]
    elif cloud == "gcp":
        assert "manager-vpc" not in names and "manager-router" not in names
        (subnet,) = [r for r in run.resources if r.name == "manager-nodes"]
        assert any(d.endswith("::primary-vpc") for d in subnet.dependencies)
        nodes = inputs(subnet)["ipCidrRange"]
        pods = next(s["ipCidrRange"] for s in inputs(subnet)["secondaryIpRanges"] if s["rangeName"] == "pods")
        assert {nodes, pods} <= set(_allow_list_private(run, "primary"))
    else:
        assert "manager-vnet" not in names
        (subnet,) = [r for r in run.resources if r.name == "manager-nodes"]
        assert any(d.endswith("::primary-vnet") for d in subnet.dependencies)


def _allow_list_private(run, cluster: str) -> list[str]:
    (gke,) = [r for r in run.resources if r.name == f"{cluster}-gke"]
    return [c["cidrBlock"] for c in inputs(gke)["masterAuthorizedNetworksConfig"]["cidrBlocks"]]


def test_the_mock_token_secret_is_decoded_into_the_kubeconfig(prod_plan):
    secret = next(r for r in prod_plan.run.by_type("kubernetes:core/v1:Secret") if r.name == "burst-multikueue-access-token")
    token = base64.b64decode(secret.outputs["data"]["token"]).decode()
    kubeconfig = next(r for r in prod_plan.run.by_type("kubernetes:core/v1:Secret")
                      if r.name == "manager-multikueue-burst-kubeconfig")
    assert json.loads(plain(kubeconfig.inputs["stringData"])["kubeconfig"])["users"][0]["user"]["token"] == token


@pytest.mark.parametrize(
    ("change", "path", "fragment"),
    [
        ({"bursting": {"enabled": False}}, "clusters[1].role", "needs bursting.enabled"),
        ({"clusters[1].cloud": "aws"}, "clusters[1].cloud", "another provider than the primary"),
        ({"clusters[1].gpuPools[0].min": 1}, "clusters[1].gpuPools[0].min", "must be 0 on a burst cluster"),
        ({"addons": {"kueue": {"enabled": False}}}, "bursting.enabled", "needs addons.kueue"),
        ({"clusters[0].name": "manager"}, "clusters[0].name", "the dedicated manager's name"),
        ({"endpoint": None}, "clusters[1].endpoint.public", "must be true on a burst cluster"),
        ({"bursting": {"enabled": True, "manager": "primary", "managerPool": {"machineType": "m6i.large"}}},
         "bursting.managerPool", "only applies to manager: dedicated"),
    ],
)
def test_bursting_config_mistakes(tmp_path, change, path, fragment):
    config = {"environment": "dev", "bursting": {"enabled": True},
              "clusters": [{"name": "primary", **CLOUDS["aws"]},
                           {**BURST, **{k: v for k, v in CLOUDS["gcp"].items() if k != "project"}, "project": "acme-ml"}]}
    config["clusters"][1] = {k: v for k, v in config["clusters"][1].items() if k != "endpoint" or "endpoint" not in change}
    for key, value in change.items():
        if key.startswith("clusters["):
            index, rest = int(key[9]), key[12:]
            target = config["clusters"][index]
            if rest.startswith("gpuPools[0]."):
                target = target["gpuPools"][0]
                rest = rest[len("gpuPools[0]."):]
            target[rest] = value if rest != "cloud" else value
            if rest == "cloud" and value == "aws":
                target.pop("project", None)
                target.update(region="us-east-1", gpuPools=[{"name": "l4", "machineType": "g6.xlarge"}])
        elif key != "endpoint":
            config[key] = value
    result = plan_config(tmp_path, config)
    assert result.exit_code == 2
    assert any(f"ai-platform:{path}: " in line and fragment in line for line in result.config_errors), result.config_errors


def test_scale_quantity():
    assert [scale_quantity(q, 3) for q in ("16", "64Gi", "500m", "1.5")] == ["48", "192Gi", "1500m", "4.5"]


# -- the manager side on its own (fast, no plan) -------------------------------------------------

def _resolve(kubeconfig: dict) -> tuple[dict, dict]:
    """(cluster, user) as client-go resolves the current context; a dangling name is an error."""
    context = {c["name"]: c["context"] for c in kubeconfig["contexts"]}[kubeconfig["current-context"]]
    clusters = {c["name"]: c["cluster"] for c in kubeconfig["clusters"]}
    users = {u["name"]: u["user"] for u in kubeconfig["users"]}
    return clusters[context["cluster"]], users[context["user"]]


def test_the_token_kubeconfig_resolves_to_the_worker_and_its_token():
    from components.bursting import token_kubeconfig

    config = json.loads(token_kubeconfig("burst", "https://203.0.113.10", "Q0E=", "eyJtoken"))
    assert config["kind"] == "Config" and config["apiVersion"] == "v1"
    cluster, user = _resolve(config)
    assert cluster == {"server": "https://203.0.113.10", "certificate-authority-data": "Q0E="}
    assert user == {"token": "eyJtoken"}
    # Two workers' kubeconfigs never share a name the manager could confuse.
    other = json.loads(token_kubeconfig("primary", "https://198.51.100.1", "Q0E=", "eyJother"))
    assert {c["name"] for c in config["contexts"]}.isdisjoint(c["name"] for c in other["contexts"])


def _manager(queue_suffix: str, workers=("primary", "burst")):
    import pulumi
    import pulumi_kubernetes as k8s

    from components.addons.kueue import TenantQuota
    from components.bursting import MultiKueue, WorkerRef

    from .conftest import run_component

    class Manager:
        name = "manager"

    def program():
        provider = k8s.Provider("manager-k8s", kubeconfig="{}")
        release = k8s.core.v1.ConfigMap("manager-kueue", opts=pulumi.ResourceOptions(provider=provider))
        holder["multikueue"] = MultiKueue(
            "manager-multikueue", Manager(), [WorkerRef(w, pulumi.Output.secret("{}")) for w in workers],
            (TenantQuota("research", gpus=4, borrow_gpus=2, cpu="16", memory="64Gi"),), release,
            queue_suffix=queue_suffix, opts=pulumi.ResourceOptions(provider=provider))

    holder = {}
    run = run_component(program)
    run.component = holder["multikueue"]
    return run


def test_a_burst_queue_is_its_own_cohort_so_local_queues_never_borrow_remote_quota():
    from components.addons.kueue import TenantQuota, cluster_queue_spec

    run = _manager("-burst", workers=("burst",))
    (queue,) = objects(run, "ClusterQueue").values()
    assert queue["metadata"]["name"] == "research-burst"  # what the tenant's `burst` LocalQueue names
    local = cluster_queue_spec(TenantQuota("research", 4, 2, "16", "64Gi"), ())
    assert queue["spec"]["cohortName"] != local["cohortName"]
    # Every workload admitted there goes through MultiKueue, to the burst worker.
    (check,) = objects(run, "AdmissionCheck").values()
    assert queue["spec"]["admissionChecksStrategy"]["admissionChecks"] == [{"name": check["metadata"]["name"]}]
    (config,) = objects(run, "MultiKueueConfig").values()
    assert check["spec"]["parameters"]["name"] == config["metadata"]["name"]
    assert check["spec"]["controllerName"] == "kueue.x-k8s.io/multikueue"  # Kueue's MultiKueue controller
    assert config["spec"]["clusters"] == ["burst"]


def test_a_dedicated_managers_queue_holds_every_workers_quota_and_dispatches_in_order():
    run = _manager("")
    assert _registered_type(run, run.component) == f"ai-platform:bursting:{type(run.component).__name__}"
    (queue,) = objects(run, "ClusterQueue").values()
    assert queue["metadata"]["name"] == "research"  # the tenant's `default` LocalQueue feeds it
    # Only the tenant's own namespace may submit (Kueue: a missing selector admits no namespace).
    selector = queue["spec"].get("namespaceSelector")
    assert selector is not None and labels_match(selector, {"kubernetes.io/metadata.name": "research"})
    assert not labels_match(selector, {"kubernetes.io/metadata.name": "recsys"})
    # As on the local queues: lent quota is reclaimed from any borrower, and priority decides inside the queue
    # (Kueue's default is Never for both: a tenant's own quota could stay lent away).
    assert queue["spec"]["preemption"] == {"reclaimWithinCohort": "Any", "withinClusterQueue": "LowerPriority"}
    cpu_group, gpu_group = queue["spec"]["resourceGroups"]
    (gpu,) = gpu_group["flavors"][0]["resources"]
    assert (gpu["name"], gpu["nominalQuota"], gpu["borrowingLimit"]) == ("nvidia.com/gpu", 8, 4)
    assert {r["name"]: r["nominalQuota"] for r in cpu_group["flavors"][0]["resources"]} == {"cpu": "32",
                                                                                            "memory": "128Gi"}
    (config,) = objects(run, "MultiKueueConfig").values()
    assert config["spec"]["clusters"] == ["primary", "burst"]
    # Each MultiKueueCluster reads its kubeconfig from a Secret in Kueue's namespace.
    secrets = {(inputs(r)["metadata"]["namespace"], inputs(r)["metadata"]["name"])
               for r in run.by_type("kubernetes:core/v1:Secret")}
    for name, mk in objects(run, "MultiKueueCluster").items():
        source = mk["spec"]["clusterSource"]["kubeConfig"]
        assert source["locationType"] == "Secret" and ("kueue-system", source["location"]) in secrets, name


def test_a_manager_cannot_be_its_own_worker_or_have_none():
    with pytest.raises(Exception, match="cannot be the MultiKueue manager"):
        _manager("", workers=("manager",))
    with pytest.raises(Exception, match="at least one worker"):
        _manager("", workers=())


def test_the_worker_rules_for_every_integration_kueue_knows_are_kueues_own():
    # Not only the integrations enabled today: turning one on must not grant more (or less) than Kueue's role.
    from components.bursting import INTEGRATION_RULES, worker_rules

    upstream = _rules(yaml.safe_load((FIXTURES / "kueue-0.19.2-multikueue-worker-role.yaml").read_text())["rules"])
    for framework, rules in INTEGRATION_RULES.items():
        if framework in ("trainer.kubeflow.org/trainjob", "deployment"):
            continue  # not in Kueue's script: the test above covers both
        group, kind = _kind_of(framework)
        theirs = {r for r in upstream if r[0] == group and r[1].split("/")[0] == kind}
        assert theirs and _rules(rules) == theirs, framework
    assert _rules(worker_rules(())) == {r for r in upstream if r[0] == "kueue.x-k8s.io"}
    with pytest.raises(ValueError, match="no MultiKueue worker rules"):
        worker_rules(("example.com/unknown",))


def _worker_access(namespaces=("research", "recsys"), generation: int = 1):
    import pulumi
    import pulumi_kubernetes as k8s

    from components.bursting import WorkerAccess

    from .conftest import run_component

    holder = {}

    class Worker:
        name = "burst"

    def program():
        provider = k8s.Provider("burst-k8s", kubeconfig="{}")
        worker = Worker()
        worker.api_server = pulumi.Output.from_input("https://203.0.113.10")
        worker.certificate_authority = pulumi.Output.from_input("Q0E=")
        holder["access"] = WorkerAccess("burst-multikueue-access", worker, namespaces, [], generation,
                                        opts=pulumi.ResourceOptions(provider=provider))
        holder["access"].kubeconfig.apply(lambda k: holder.setdefault("kubeconfig", json.loads(k)))

    run = run_component(program)
    run.kubeconfig = holder["kubeconfig"]
    run.component = holder["access"]
    return run


def test_the_worker_token_can_mirror_jobs_into_tenant_namespaces_and_nothing_more():
    from stacks.admission import User
    from stacks.rbac import authorizer

    run = _worker_access()
    objects = [inputs(r) for r in run.resources if r.custom and "metadata" in inputs(r)]
    can = authorizer(objects)
    sa = User("system:serviceaccount:kueue-system:multikueue-sa", ("system:serviceaccounts",))
    # The API server refuses a binding whose roleRef is not an RBAC role (and the evaluator does not check).
    bindings = [o for o in objects if o["kind"] in ("RoleBinding", "ClusterRoleBinding")]
    assert bindings and all(b["roleRef"]["apiGroup"] == "rbac.authorization.k8s.io" for b in bindings)
    for ns in ("research", "recsys"):
        assert can(sa, "create", "batch", "jobs", ns) and can(sa, "delete", "jobset.x-k8s.io", "jobsets", ns)
        assert can(sa, "patch", "kueue.x-k8s.io", "workloads/status", ns)
    # MultiKueue watches across namespaces; it writes in none of the platform's.
    for verb in ("get", "list", "watch"):
        assert can(sa, verb, "kueue.x-k8s.io", "workloads", None) and can(sa, verb, "batch", "jobs", None), verb
    for ns in ("kube-system", "kueue-system", "monitoring"):
        assert not can(sa, "create", "batch", "jobs", ns), ns
        assert not can(sa, "create", "", "pods", ns), ns
    for verb, group, resource in (("get", "", "secrets"), ("create", "rbac.authorization.k8s.io", "rolebindings"),
                                  ("delete", "", "namespaces"), ("create", "", "serviceaccounts/token")):
        assert not can(sa, verb, group, resource, "research"), (verb, resource)
    assert not can(User("system:serviceaccount:kueue-system:default", ()), "create", "batch", "jobs", "research")


def _registered_type(run, component) -> str:
    (reg,) = [r for r in run.resources if not r.custom and r.name == component._name]
    return reg.type


def test_the_worker_token_is_the_service_accounts_and_rotates_with_its_generation():
    run = _worker_access(generation=3)
    # A stable, self-describing type token: URNs (and so the state of every child) hang on it.
    assert _registered_type(run, run.component) == f"ai-platform:bursting:{type(run.component).__name__}"
    (token,) = [inputs(r) for r in run.by_type("kubernetes:core/v1:Secret")]
    (sa,) = [inputs(r) for r in run.by_type("kubernetes:core/v1:ServiceAccount")]
    assert token["type"] == "kubernetes.io/service-account-token"
    assert (token["metadata"]["namespace"], sa["metadata"]["namespace"]) == ("kueue-system", "kueue-system")
    assert token["metadata"]["annotations"]["kubernetes.io/service-account.name"] == sa["metadata"]["name"]
    assert token["metadata"]["name"].endswith("-3")
    (rotated,) = _worker_access(generation=4).by_type("kubernetes:core/v1:Secret")
    assert inputs(rotated)["metadata"]["name"] != token["metadata"]["name"]


def test_the_token_exists_after_its_service_account_and_reaches_the_manager_in_the_kubeconfig():
    run = _worker_access()
    (token,) = run.by_type("kubernetes:core/v1:Secret")
    (sa,) = run.by_type("kubernetes:core/v1:ServiceAccount")
    # Kubernetes' token controller deletes a token Secret whose ServiceAccount does not exist yet.
    assert sa.urn in token.dependencies
    cluster, user = _resolve(run.kubeconfig)
    assert cluster == {"server": "https://203.0.113.10", "certificate-authority-data": "Q0E="}
    assert user == {"token": base64.b64decode(token.outputs["data"]["token"]).decode()}


def test_every_manager_object_waits_for_kueue_and_each_worker_cluster_for_its_kubeconfig():
    run = _manager("")
    (release,) = run.by_type("kubernetes:core/v1:ConfigMap")
    kueue_objects = [r for r in run.resources if r.type.startswith("kubernetes:kueue.x-k8s.io/")]
    assert len(kueue_objects) == 6  # 2 MultiKueueClusters, config, admission check, flavor, 1 queue
    for r in kueue_objects:  # Kueue's CRDs and webhooks come with its release
        assert release.urn in r.dependencies, r.name
    secrets = {inputs(r)["metadata"]["name"]: r for r in run.by_type("kubernetes:core/v1:Secret")}
    for r in run.by_type("kubernetes:kueue.x-k8s.io/v1beta2:MultiKueueCluster"):
        secret = secrets[inputs(r)["spec"]["clusterSource"]["kubeConfig"]["location"]]
        assert secret.urn in r.dependencies, r.name
        # Kueue reads the kubeconfig from this key of the Secret.
        assert "kubeconfig" in plain(secret.inputs["stringData"]), r.name


def test_every_queues_flavors_cover_exactly_its_resource_groups_resources():
    # Kueue's validation: each flavor of a resource group lists the group's coveredResources, in order.
    (manager,) = objects(_manager(""), "ClusterQueue").values()
    groups = manager["spec"]["resourceGroups"]
    # A workload asking for a resource no group covers is never admitted.
    assert sorted(r for g in groups for r in g["coveredResources"]) == ["cpu", "memory", "nvidia.com/gpu"]
    for group in groups:
        for flavor in group["flavors"]:
            assert [r["name"] for r in flavor["resources"]] == group["coveredResources"], flavor["name"]
