"""`python -m stacks preflight <stack>`: GPU capacity checks before `pulumi up`.

For AWS clusters, with boto3: every GPU pool's instance type is offered in the zones the
cluster will use, its GPU count and model are what the config says, and the account's
EC2 vCPU quotas cover `max` nodes of all pools together. A `pulumi up` that fails 20
minutes in because p5 is not offered or the quota is 0 wastes an afternoon.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

from components.clusters.base import GpuPool, resolve_gpu_pool

from . import config as stack_config
from .plan import PlanInputError, read_stack_file, stack_file, stack_name_for

# Service Quotas codes for EC2 vCPUs, per instance family class and capacity type.
QUOTAS = {
    ("P", "on-demand"): ("L-417A185B", "Running On-Demand P instances"),
    ("G", "on-demand"): ("L-DB2E81BA", "Running On-Demand G and VT instances"),
    ("P", "spot"): ("L-7212CCBC", "All P Spot Instance Requests"),
    ("G", "spot"): ("L-3819A6DF", "All G and VT Spot Instance Requests"),
}


@dataclass
class Finding:
    cluster: str
    pool: str | None
    blocking: bool
    message: str
    fix: str = ""

    def __str__(self) -> str:
        where = f"{self.cluster}/{self.pool}" if self.pool else self.cluster
        level = "ERROR" if self.blocking else "warn "
        return f"{level} {where}: {self.message}" + (f"\n      fix: {self.fix}" if self.fix else "")


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    not_checked: list[str] = field(default_factory=list)

    @property
    def blocking(self) -> list[Finding]:
        return [f for f in self.findings if f.blocking]


def family_class(instance_type: str) -> str | None:
    """"P" or "G" (the quota class of GPU instance families), else None."""
    first = instance_type[:1].upper()
    return first if first in ("P", "G") else None


def _zones(ec2, count: int) -> list[str]:
    """The zones EksCluster will use: the first `count` available, non-opt-in zones."""
    zones = ec2.describe_availability_zones(
        Filters=[{"Name": "state", "Values": ["available"]},
                 {"Name": "opt-in-status", "Values": ["opt-in-not-required"]}]
    )["AvailabilityZones"]
    return sorted(z["ZoneName"] for z in zones)[:count]


def check_aws_cluster(name: str, region: str, zones_wanted: int, pools: list[GpuPool],
                      session_factory: Callable[[str], boto3.session.Session]) -> list[Finding]:
    session = session_factory(region)
    ec2 = session.client("ec2", region_name=region)
    quotas = session.client("service-quotas", region_name=region)
    findings: list[Finding] = []
    zones = _zones(ec2, zones_wanted)
    types = sorted({p.machine_type for p in pools})
    offered: dict[str, set[str]] = defaultdict(set)
    for page in ec2.get_paginator("describe_instance_type_offerings").paginate(
            LocationType="availability-zone", Filters=[{"Name": "instance-type", "Values": types}]):
        for o in page["InstanceTypeOfferings"]:
            offered[o["InstanceType"]].add(o["Location"])
    described = {t["InstanceType"]: t for t in ec2.describe_instance_types(InstanceTypes=types)["InstanceTypes"]}
    needed_vcpus: dict[tuple[str, str], int] = defaultdict(int)
    for pool in pools:
        t = pool.machine_type
        where = offered.get(t, set())
        in_zones = sorted(set(zones) & where)
        if not in_zones:
            findings.append(Finding(name, pool.name, True,
                                    f"{t} is not offered in the cluster's zones {', '.join(zones)}",
                                    f"use a region or zones that offer it: {', '.join(sorted(where)) or 'none in ' + region}"))
        elif len(in_zones) < len(zones):
            findings.append(Finding(name, pool.name, False,
                                    f"{t} is offered in {', '.join(in_zones)} only, not in "
                                    f"{', '.join(sorted(set(zones) - where))}: nodes launch there only"))
        info = described.get(t)
        if info is None:
            findings.append(Finding(name, pool.name, True, f"EC2 does not know instance type {t} in {region}"))
            continue
        gpus = (info.get("GpuInfo") or {}).get("Gpus") or []
        count = sum(g.get("Count", 0) for g in gpus)
        model = gpus[0]["Name"].lower() if gpus else "none"
        if count != pool.gpus:
            findings.append(Finding(name, pool.name, True, f"{t} has {count} GPU(s), the config says {pool.gpus}",
                                    f"set gpus: {count} (or pick another machineType)"))
        if model != pool.gpu_model.split("-")[0]:
            findings.append(Finding(name, pool.name, True, f"{t} carries {model}, the config says {pool.gpu_model}",
                                    f"set gpuModel: {model}"))
        cls = family_class(t)
        if cls:
            needed_vcpus[(cls, pool.capacity)] += pool.max * info["VCpuInfo"]["DefaultVCpus"]
    for (cls, capacity), vcpus in sorted(needed_vcpus.items()):
        code, title = QUOTAS[(cls, capacity)]
        try:
            value = quotas.get_service_quota(ServiceCode="ec2", QuotaCode=code)["Quota"]["Value"]
        except ClientError as exc:
            findings.append(Finding(name, None, False, f"could not read quota {code} ({title}): "
                                                       f"{exc.response['Error']['Code']}"))
            continue
        if vcpus > value:
            users = ", ".join(p.name for p in pools if family_class(p.machine_type) == cls and p.capacity == capacity)
            findings.append(Finding(
                name, users, True,
                f"{title} quota is {math.floor(value)} vCPUs; max nodes of {users} need {vcpus}",
                f"request an increase of quota {code} to at least {vcpus}: "
                f"aws service-quotas request-service-quota-increase --service-code ec2 --quota-code {code} "
                f"--desired-value {vcpus} --region {region}"))
    return findings


def run(stack: str | None, config_file: Path | None,
        session_factory: Callable[[str], boto3.session.Session] | None = None) -> Report:
    path = Path(config_file) if config_file else stack_file(stack or "dev")
    config, _ = read_stack_file(path)
    raw = {}
    for key, value in config.items():
        ns, _, short = key.partition(":")
        if ns == stack_config.NAMESPACE:
            raw[short] = json.loads(value) if short in stack_config._STRUCTURED else value
    try:
        cfg = stack_config.parse(raw, stack=stack or stack_name_for(path))
    except stack_config.ConfigError as exc:
        raise PlanInputError(exc.lines(path.name)) from None
    factory = session_factory or (lambda region: boto3.session.Session(region_name=region))
    report = Report()
    driver = "gpu-operator" if cfg.addons.gpu_operator.enabled else "cloud"
    for cluster in cfg.clusters:
        if cluster.cloud != "aws":
            report.not_checked.append(f"{cluster.name} ({cluster.cloud}): not checked; preflight covers AWS "
                                      "clusters (GPU capacity and quotas) only")
            continue
        pools = [resolve_gpu_pool("aws", p, driver) for p in cluster.gpu_pools]
        if not pools:
            report.checked.append(f"{cluster.name} (aws, {cluster.region}): no GPU pools")
            continue
        report.findings += check_aws_cluster(cluster.name, cluster.region, cfg.network(cluster).zones, pools, factory)
        report.checked.append(f"{cluster.name} (aws, {cluster.region}): {', '.join(p.name for p in pools)}")
    return report


def main(stack: str | None, config_file: str | None) -> int:
    try:
        report = run(stack, Path(config_file) if config_file else None)
    except PlanInputError as exc:
        print("\n".join(exc.lines))
        return 2
    except (NoCredentialsError, NoRegionError):
        print("error: no AWS credentials found. Set AWS_PROFILE (or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY), "
              "or run `aws sso login`, then retry. Nothing was checked.")
        return 3
    except (ClientError, BotoCoreError) as exc:
        print(f"error: AWS refused the preflight calls: {exc}")
        return 3
    for line in report.checked:
        print(f"checked {line}")
    for line in report.not_checked:
        print(f"skipped {line}")
    for finding in report.findings:
        print(finding)
    blocking = len(report.blocking)
    print(f"preflight: {blocking} blocking problem(s), {len(report.findings) - blocking} warning(s)")
    return 1 if blocking else 0
