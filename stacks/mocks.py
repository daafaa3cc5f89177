"""Mocks for the offline plan: realistic computed outputs per resource type, so every
downstream resource of the real program gets built. Deterministic: the same config
always yields the same plan."""

from __future__ import annotations

import base64
import hashlib

import pulumi

ACCOUNT_ID = "123456789012"
DEFAULT_REGION = "us-west-2"


def _h(*parts: str, n: int = 16) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:n]


_FAKE_CA = base64.b64encode(
    b"-----BEGIN CERTIFICATE-----\nMIIBplanofflineplanofflineplanoffline\n-----END CERTIFICATE-----\n"
).decode()


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

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict:
        tok = args.token
        region = self._region(args.provider, args.args)
        if tok == "aws:index/getAvailabilityZones:getAvailabilityZones":
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
        return {}
