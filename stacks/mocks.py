"""Mocks for the offline plan: realistic computed outputs per resource type, so every
downstream resource of the real program gets built. Deterministic: the same config
always yields the same plan."""

from __future__ import annotations

import base64
import hashlib

import pulumi

ACCOUNT_ID = "123456789012"
DEFAULT_REGION = "us-west-2"
GCP_PROJECT_NUMBER = "123456789012"
AZURE_SUBSCRIPTION = "00000000-0000-0000-0000-00000000c0de"
AZURE_TENANT = "00000000-0000-0000-0000-0000000000aa"
AZURE_OBJECT_ID = "00000000-0000-0000-0000-0000000000bb"


def _h(*parts: str, n: int = 16) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:n]


_FAKE_CA = base64.b64encode(
    b"-----BEGIN CERTIFICATE-----\nMIIBplanofflineplanofflineplanoffline\n-----END CERTIFICATE-----\n"
).decode()


# What EC2 DescribeAvailabilityZones accepts (EC2 API reference): anything else fails at `pulumi up`.
_ZONE_STATES = ("available", "information", "impaired", "unavailable")
_ZONE_FILTERS = {"group-long-name", "group-name", "message", "opt-in-status", "parent-zone-id", "parent-zone-name",
                 "region-name", "state", "zone-id", "zone-type", "zone-name"}
_OPT_IN_STATUSES = {"opted-in", "not-opted-in", "opt-in-not-required"}


def _check_zone_query(query: dict) -> None:
    if query.get("state") not in (None, *_ZONE_STATES):
        raise ValueError(f"getAvailabilityZones: state {query['state']!r} is not one of {', '.join(_ZONE_STATES)}")
    for f in query.get("filters") or []:
        if f.get("name") not in _ZONE_FILTERS:
            raise ValueError(f"getAvailabilityZones: no filter named {f.get('name')!r}")
        if f["name"] == "opt-in-status" and not set(f.get("values") or []) <= _OPT_IN_STATUSES:
            raise ValueError(f"getAvailabilityZones: opt-in-status values {f.get('values')} are not "
                             f"among {sorted(_OPT_IN_STATUSES)}")


class PlatformMocks(pulumi.runtime.Mocks):
    """Answers resource registrations and invokes the way the providers would."""

    def __init__(self) -> None:
        self._provider_region: dict[str, str] = {}

    def _region(self, provider_ref: str | None, inputs: dict | None = None) -> str:
        if inputs and isinstance(inputs.get("region"), str):
            return inputs["region"]
        # A provider reference is "<urn>::<id>"; the id is ours (see new_resource).
        return self._provider_region.get((provider_ref or "").rsplit("::", 1)[-1], DEFAULT_REGION)

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict]:
        t, name, inputs = args.typ, args.name, dict(args.inputs)
        if t == "pulumi:providers:aws":
            self._provider_region[f"{name}-provider-id"] = inputs.get("region", DEFAULT_REGION)
            return f"{name}-provider-id", inputs
        if t.startswith("pulumi:providers:"):
            return f"{name}-provider-id", inputs
        if t.startswith("aws:"):
            return self._aws(t, name, inputs, self._region(args.provider, inputs))
        if t.startswith("gcp:"):
            return self._gcp(t, name, inputs)
        if t.startswith("azure-native:"):
            return self._azure(t, name, inputs)
        if t == "random:index/randomPassword:RandomPassword":
            length = int(inputs.get("length", 16))
            return f"{name}-id", {**inputs, "result": (_h("password", name) * 4)[:length]}
        if t.startswith("kubernetes:"):
            meta = inputs.get("metadata") or {}
            ns = meta.get("namespace")
            rid = f"{ns}/{meta.get('name', name)}" if ns else meta.get("name", name)
            if t == "kubernetes:helm.sh/v3:Release":
                rid = f"{inputs.get('namespace', 'default')}/{inputs.get('name', name)}"
                inputs["status"] = {
                    "name": inputs.get("name", name),
                    "namespace": inputs.get("namespace", "default"),
                    "chart": inputs.get("chart"),
                    "version": inputs.get("version"),
                    "status": "deployed",
                    "revision": 1,
                }
            if t == "kubernetes:core/v1:Secret" and inputs.get("type") == "kubernetes.io/service-account-token":
                # The token controller fills these in.
                token = base64.b64encode(f"eyJhbGciOiJSUzI1NiJ9.{_h('token', rid, n=32)}".encode()).decode()
                inputs["data"] = {"token": token, "ca.crt": _FAKE_CA, "namespace": base64.b64encode(b"kueue-system").decode()}
            return rid, inputs
        return f"{name}-id", inputs

    def _aws(self, t: str, name: str, inputs: dict, region: str) -> tuple[str, dict]:
        acct = ACCOUNT_ID
        service = t.split(":")[1].split("/")[0]
        rid = f"{name}-{_h(t, name, n=8)}"
        out = dict(inputs)
        if t == "aws:eks/cluster:Cluster":
            cname = inputs.get("name", name)
            oidc_id = _h("oidc", cname, n=32).upper()
            rid = cname
            out.update(
                name=cname,
                arn=f"arn:aws:eks:{region}:{acct}:cluster/{cname}",
                endpoint=f"https://{oidc_id}.gr7.{region}.eks.amazonaws.com",
                certificateAuthority={"data": _FAKE_CA},
                identities=[{"oidcs": [{"issuer": f"https://oidc.eks.{region}.amazonaws.com/id/{oidc_id}"}]}],
                platformVersion="eks.1",
                # EKS creates the cluster security group and reports it in vpcConfig.
                vpcConfig={**(inputs.get("vpcConfig") or {}), "clusterSecurityGroupId": f"sg-{_h('csg', cname, n=17)}",
                           "vpcId": "vpc-mock"},
                status="ACTIVE",
                clusterId=_h("cluster", cname, n=36),
            )
        elif t == "aws:eks/nodeGroup:NodeGroup":
            ng = inputs.get("nodeGroupName") or f"{name}-{_h(name, n=7)}"
            out.update(
                nodeGroupName=ng,
                arn=f"arn:aws:eks:{region}:{acct}:nodegroup/{inputs.get('clusterName')}/{ng}/{_h(ng, n=8)}",
                resources=[{"autoscalingGroups": [{"name": f"eks-{ng}-{_h('asg', ng, n=12)}"}]}],
                status="ACTIVE",
            )
        elif t == "aws:kms/key:Key":
            key_id = f"{_h('kms', name, n=8)}-{_h('kms2', name, n=4)}-4{_h('k3', name, n=3)}-8{_h('k4', name, n=3)}-{_h('k5', name, n=12)}"
            rid = key_id
            out.update(keyId=key_id, arn=f"arn:aws:kms:{region}:{acct}:key/{key_id}")
        elif t == "aws:iam/role:Role":
            role = inputs.get("name") or f"{name}-{_h(name, n=7)}"
            rid = role
            out.update(name=role, arn=f"arn:aws:iam::{acct}:role/{role}", uniqueId=f"AROA{_h(role, n=17).upper()}")
        elif t == "aws:iam/openIdConnectProvider:OpenIdConnectProvider":
            host = str(inputs.get("url", "")).removeprefix("https://")
            rid = f"arn:aws:iam::{acct}:oidc-provider/{host}"
            out.update(arn=rid)
        elif t == "aws:ec2/launchTemplate:LaunchTemplate":
            rid = f"lt-{_h(name, n=17)}"
            out.update(latestVersion=1, defaultVersion=1, arn=f"arn:aws:ec2:{region}:{acct}:launch-template/{rid}")
        elif t.startswith("aws:ec2/"):
            prefix = {"vpc": "vpc", "subnet": "subnet", "internetGateway": "igw", "natGateway": "nat",
                      "eip": "eipalloc", "routeTable": "rtb", "routeTableAssociation": "rtbassoc"}
            kind = t.split("/")[1].split(":")[0]
            rid = f"{prefix.get(kind, kind.lower())}-{_h(name, n=17)}"
            if kind == "eip":
                out.update(publicIp=f"203.0.113.{int(_h(name, n=2), 16) % 250 + 1}", allocationId=rid)
            out.setdefault("arn", f"arn:aws:ec2:{region}:{acct}:{kind.lower()}/{rid}")
        elif t == "aws:cloudwatch/logGroup:LogGroup":
            rid = inputs.get("name", name)
            out.update(arn=f"arn:aws:logs:{region}:{acct}:log-group:{rid}")
        else:
            out.setdefault("arn", f"arn:aws:{service}:{region}:{acct}:{name}")
        out.setdefault("tagsAll", {**(inputs.get("tags") or {})})
        return rid, out

    def _gcp(self, t: str, name: str, inputs: dict) -> tuple[str, dict]:
        out = dict(inputs)
        project, region = inputs.get("project", "mock-project"), inputs.get("region") or inputs.get("location", "us-central1")
        rid = f"projects/{project}/{name}"
        if t == "gcp:container/cluster:Cluster":
            cname = inputs.get("name", name)
            rid = f"projects/{project}/locations/{region}/clusters/{cname}"
            private = (inputs.get("privateClusterConfig") or {}).get("enablePrivateEndpoint")
            out.update(
                id=rid, name=cname,
                endpoint="172.16.0.2" if private else f"34.{int(_h(cname, n=2), 16) % 250}.10.20",
                masterAuth={**(inputs.get("masterAuth") or {}), "clusterCaCertificate": _FAKE_CA},
                selfLink=f"https://container.googleapis.com/v1/{rid}",
            )
        elif t == "gcp:container/nodePool:NodePool":
            rid = f"{inputs.get('cluster')}/nodePools/{name}"
            out.update(instanceGroupUrls=[f"https://www.googleapis.com/compute/v1/projects/{project}/zones/{region}-a/instanceGroupManagers/gke-{name}-grp"])
        elif t == "gcp:serviceaccount/account:Account":
            email = f"{inputs.get('accountId', name)}@{project}.iam.gserviceaccount.com"
            rid = f"projects/{project}/serviceAccounts/{email}"
            out.update(email=email, member=f"serviceAccount:{email}", uniqueId=_h(email, n=21))
        elif t == "gcp:kms/keyRing:KeyRing":
            rid = f"projects/{project}/locations/{inputs.get('location')}/keyRings/{name}"
        elif t == "gcp:kms/cryptoKey:CryptoKey":
            rid = f"{inputs.get('keyRing')}/cryptoKeys/{name}"
        elif t.startswith("gcp:compute/"):
            kind = t.split("/")[1].split(":")[0]
            rid = f"projects/{project}/regions/{region}/{kind}s/{name}"
            out.update(selfLink=f"https://www.googleapis.com/compute/v1/{rid}", name=inputs.get("name", name))
            if kind == "address":
                out.update(address=f"34.{int(_h(name, n=2), 16) % 250 + 1}.{int(_h(name, 'b', n=2), 16) % 250}.7")
        out["id"] = rid
        return rid, out

    def _azure(self, t: str, name: str, inputs: dict) -> tuple[str, dict]:
        out = dict(inputs)
        group = inputs.get("resourceGroupName", "mock-rg")
        base = f"/subscriptions/{AZURE_SUBSCRIPTION}/resourceGroups/{group}/providers"
        if t == "azure-native:resources:ResourceGroup":
            rname = inputs.get("resourceGroupName", name)
            rid = f"/subscriptions/{AZURE_SUBSCRIPTION}/resourceGroups/{rname}"
            out.update(name=rname)
        elif t == "azure-native:containerservice:ManagedCluster":
            rname = inputs.get("resourceName", name)
            rid = f"{base}/Microsoft.ContainerService/managedClusters/{rname}"
            loc = inputs.get("location", "westeurope")
            out.update(
                name=rname,
                fqdn=f"{rname}-{_h(rname, n=8)}.hcp.{loc}.azmk8s.io",
                privateFQDN=f"{rname}-{_h(rname, n=8)}.privatelink.{loc}.azmk8s.io",
                oidcIssuerProfile={"enabled": True, "issuerURL": f"https://{loc}.oic.prod-aks.azure.com/{AZURE_TENANT}/{_h(rname)}/"},
                provisioningState="Succeeded",
                # AKS creates the load balancer's outbound address in the node resource group.
                networkProfile={**(inputs.get("networkProfile") or {}), "loadBalancerProfile": {
                    "effectiveOutboundIPs": [{"id": f"/subscriptions/{AZURE_SUBSCRIPTION}/resourceGroups/MC_{group}_"
                                                     f"{rname}_{loc}/providers/Microsoft.Network/publicIPAddresses/"
                                                     f"{_h('egress', rname, n=36)}"}]}},
            )
        elif t == "azure-native:containerservice:AgentPool":
            rname = inputs.get("agentPoolName", name)
            rid = f"{base}/Microsoft.ContainerService/managedClusters/{inputs.get('resourceName')}/agentPools/{rname}"
            out.update(name=rname)
        else:
            kind = t.split(":")[-1]
            rname = inputs.get("name") or name
            rid = f"{base}/Mock.{t.split(':')[1]}/{kind}/{rname}"
            out.update(name=rname)
            if kind == "Workspace":
                out.update(customerId=_h(rname, n=32))
        out["id"] = rid
        return rid, out

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict:
        tok = args.token
        region = self._region(args.provider, args.args)
        if tok == "aws:index/getAvailabilityZones:getAvailabilityZones":
            _check_zone_query(args.args)
            names = [f"{region}{s}" for s in "abcd"]
            return {"id": region, "names": names, "zoneIds": [f"usw2-az{i + 1}" for i in range(4)],
                    "groupNames": [region] * 4}
        if tok == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"id": ACCOUNT_ID, "accountId": ACCOUNT_ID, "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/planner",
                    "userId": "AIDAPLANNER"}
        if tok == "aws:index/getPartition:getPartition":
            return {"id": "aws", "partition": "aws", "dnsSuffix": "amazonaws.com",
                    "reverseDnsPrefix": "com.amazonaws"}
        if tok == "aws:index/getRegion:getRegion":
            return {"id": region, "name": region, "region": region, "endpoint": f"ec2.{region}.amazonaws.com"}
        if tok == "gcp:organizations/getProject:getProject":
            pid = args.args.get("projectId", "mock-project")
            return {"id": f"projects/{pid}", "projectId": pid, "number": GCP_PROJECT_NUMBER, "name": pid}
        if tok == "azure-native:authorization:getClientConfig":
            return {"clientId": "00000000-0000-0000-0000-0000000000cc", "objectId": AZURE_OBJECT_ID,
                    "subscriptionId": AZURE_SUBSCRIPTION, "tenantId": AZURE_TENANT}
        if tok == "azure-native:containerservice:listManagedClusterUserCredentials":
            cname = args.args.get("resourceName", "cluster")
            kubeconfig = (
                "apiVersion: v1\nkind: Config\nclusters:\n- name: " + cname + "\n  cluster:\n"
                f"    certificate-authority-data: {_FAKE_CA}\n"
                f"    server: https://{cname}-{_h(cname, n=8)}.privatelink.westeurope.azmk8s.io:443\n"
                "contexts: []\nusers: []\n"
            )
            return {"kubeconfigs": [{"name": "clusterUser", "value": base64.b64encode(kubeconfig.encode()).decode()}]}
        if tok == "azure-native:network:getPublicIPAddress":
            ip_name = args.args.get("publicIpAddressName", "ip")
            return {"name": ip_name, "ipAddress": f"20.{int(_h(ip_name, n=2), 16) % 250 + 1}.30.4",
                    "publicIPAllocationMethod": "Static"}
        return {}
