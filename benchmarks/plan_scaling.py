"""Plan scaling: the prod stack with 10, 100 and 500 tenants, against a floor.

For each size it runs, in a fresh process: the real program under the offline engine's
mock runtime (what `python -m stacks plan` runs), and the floor: bare registration of the
same number of Kubernetes resources (ConfigMaps) under the same mock runtime, with no
platform logic. Both hand the event loop to their registrations before the SDK's shutdown
wait (`stacks.platform.start_registrations`), so the floor is the cheapest bare program, not
a slow one; `--sync-floor` measures the floor without it too. Each process first runs a small
warm-up of the same kind, so one-off imports and schema builds are not timed. Timings on a
shared 2-core machine vary by 10-20% run to run, so each side runs `--repeat` times,
interleaved, and the best of each is compared (every run is printed).
It prints resources, wall time, peak memory and time per resource for both, and the ratio.
Policies and schema validation are timed separately (they are not part of registration).
Also prints the prod plan's longest dependency chain: what `pulumi up` waits for in sequence.

    python -m benchmarks.plan_scaling [--sizes 10 100 500] [--repeat 3] [--sync-floor]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent


def prod_config(tenants: int) -> Path:
    doc = yaml.safe_load((REPO / "Pulumi.prod.yaml").read_text())
    config = doc["config"]
    config["ai-platform:tenants"] = [
        {"name": f"team-{i:04d}", "gpus": 1 if i < 16 else 0, "cpu": "8", "memory": "32Gi",
         "adminGroups": [f"team-{i:04d}-admins"]}
        for i in range(tenants)
    ]
    path = Path(tempfile.mkdtemp()) / f"Pulumi.prod-{tenants}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def warm_imports() -> None:
    """Import every provider module the program touches, so timings exclude one-off imports
    (the floor pays none either). The warm-up run then loads what they import lazily."""
    import importlib

    for module in (
        "pulumi_aws.ec2", "pulumi_aws.eks", "pulumi_aws.iam", "pulumi_aws.kms", "pulumi_aws.autoscaling",
        "pulumi_aws.cloudwatch", "pulumi_gcp.compute", "pulumi_gcp.container", "pulumi_gcp.kms",
        "pulumi_gcp.serviceaccount", "pulumi_gcp.projects", "pulumi_gcp.organizations",
        "pulumi_azure_native.containerservice", "pulumi_azure_native.network", "pulumi_azure_native.resources",
        "pulumi_azure_native.monitor", "pulumi_azure_native.operationalinsights", "pulumi_azure_native.authorization",
        "pulumi_kubernetes.core.v1", "pulumi_kubernetes.apps.v1", "pulumi_kubernetes.rbac.v1",
        "pulumi_kubernetes.networking.v1", "pulumi_kubernetes.helm.v3", "pulumi_kubernetes.storage.v1",
        "pulumi_kubernetes.apiextensions", "pulumi_kubernetes.meta.v1", "pulumi_random",
        "stacks.platform", "stacks.plan",
    ):
        importlib.import_module(module)


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def measure_ours(tenants: int, checks: bool = True) -> dict:
    from stacks import plan as plan_mod
    from stacks.engine import run_program

    path = prod_config(tenants)
    config, secrets = plan_mod.read_stack_file(path)
    os.environ["AI_PLATFORM_CONFIG_SOURCE"] = path.name
    os.chdir(REPO)
    start = time.perf_counter()
    run = run_program(str(plan_mod.PROGRAM), stack="prod", config=config, secret_keys=secrets)
    wall = time.perf_counter() - start
    if run.error:
        raise run.error
    if not checks:
        return {"resources": len(run.registrations), "wall": wall, "peakMiB": _peak_rss_mib()}
    result = plan_mod.PlanResult(stack="prod", source=path.name, run=run)
    start = time.perf_counter()
    result.violations = plan_mod.run_policies(run, config=plan_mod.read_policy_config(plan_mod.policy_config_file("prod")))
    policies = time.perf_counter() - start
    start = time.perf_counter()
    plan_mod.run_validation(run, result)
    validation = time.perf_counter() - start
    start = time.perf_counter()
    plan_mod.run_rendering(run, result)
    rendering = time.perf_counter() - start
    return {"resources": len(run.registrations), "wall": wall, "peakMiB": _peak_rss_mib(),
            "policies": policies, "validation": validation, "rendering": rendering, "exit": result.exit_code}


def measure_floor(resources: int, hand_off: bool = True) -> dict:
    import pulumi
    import pulumi_kubernetes as k8s

    from stacks.engine import run_program
    from stacks.platform import start_registrations

    def program():
        provider = k8s.Provider("floor-k8s", kubeconfig="{}")
        opts = pulumi.ResourceOptions(provider=provider)
        for i in range(resources - 2):  # minus the stack and the provider
            k8s.core.v1.ConfigMap(f"cm-{i}", metadata={"name": f"cm-{i}", "namespace": "floor"},
                                  data={"k": "v"}, opts=opts)
        if hand_off:
            start_registrations()

    start = time.perf_counter()
    run = run_program(program, stack="floor")
    wall = time.perf_counter() - start
    if run.error:
        raise run.error
    return {"resources": len(run.registrations), "wall": wall, "peakMiB": _peak_rss_mib()}


def critical_path() -> list[tuple[str, str]]:
    """The longest chain of dependencies (parent waits included) in the prod plan."""
    from stacks import plan as plan_mod

    run = plan_mod.plan("prod").run
    by_urn = {r.urn: r for r in run.resources}
    memo: dict[str, list[str]] = {}

    def longest(urn: str) -> list[str]:
        if urn not in memo:
            deps = [d for d in by_urn[urn].dependencies if d in by_urn]
            best = max((longest(d) for d in deps), key=len, default=[])
            memo[urn] = [*best, urn]
        return memo[urn]

    chain = max((longest(u) for u in by_urn if by_urn[u].custom), key=len)
    return [(by_urn[u].type, by_urn[u].name) for u in chain]


def _child(kind: str, n: int) -> dict:
    """One measurement in a fresh process, after a small warm-up of the same kind."""
    cmd = [sys.executable, "-m", "benchmarks.plan_scaling", "--child", kind, str(n)]
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=True, timeout=3600)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _per_resource(run: dict) -> float:
    return run["wall"] / run["resources"] * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 500])
    parser.add_argument("--repeat", type=int, default=3,
                        help="fresh processes per measurement, interleaved; the best of each is compared")
    parser.add_argument("--child", nargs=2, metavar=("KIND", "N"))
    parser.add_argument("--sync-floor", action="store_true",
                        help="also measure the floor without the event-loop hand-off")
    args = parser.parse_args()
    if args.child:
        kind, n = args.child[0], int(args.child[1])
        warm_imports()
        if kind in ("ours", "ours-registration"):
            measure_ours(1, checks=False)
            print(json.dumps(measure_ours(n, checks=kind == "ours")))
        else:
            measure_floor(100, hand_off=kind == "floor")
            print(json.dumps(measure_floor(n, hand_off=kind == "floor")))
        return
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"{platform.system()} {platform.release()}; best of {args.repeat} fresh processes each")
    header = (f"{'tenants':>7} {'resources':>9} {'wall s':>8} {'peak MiB':>8} {'ms/res':>7} | "
              f"{'floor s':>8} {'floor MiB':>9} {'floor ms/res':>12} | {'ratio':>5} | {'policies s':>10} "
              f"{'schemas s':>9} {'render s':>8} | runs ms/res (ours; floor)")
    print(header)
    rows = []
    for n in args.sizes:
        # Interleaved, so a noisy minute on the machine hits both sides alike.
        first = _child("ours", n)  # also times the policy pack and the schema checks, once
        ours_runs, floor_runs, sync_runs = [first], [], []
        for i in range(args.repeat):
            if i:
                ours_runs.append(_child("ours-registration", n))
            floor_runs.append(_child("floor", first["resources"]))
            if args.sync_floor:
                sync_runs.append(_child("sync-floor", first["resources"]))
        ours = min(ours_runs, key=_per_resource)
        floor = min(floor_runs, key=_per_resource)
        per, floor_per = _per_resource(ours), _per_resource(floor)
        peak = max(r["peakMiB"] for r in ours_runs)
        rows.append((n, per))
        runs = (" ".join(f"{_per_resource(r):.2f}" for r in ours_runs) + "; "
                + " ".join(f"{_per_resource(r):.2f}" for r in floor_runs))
        line = (f"{n:>7} {ours['resources']:>9} {ours['wall']:>8.1f} {peak:>8.0f} {per:>7.2f} | "
                f"{floor['wall']:>8.1f} {floor['peakMiB']:>9.0f} {floor_per:>12.2f} | {per / floor_per:>5.2f} | "
                f"{first['policies']:>10.1f} {first['validation']:>9.1f} {first.get('rendering', 0):>8.1f} | {runs}")
        if sync_runs:
            sync_per = min(_per_resource(r) for r in sync_runs)
            line += f" | sync floor {sync_per:.2f} ms/res, ratio {per / sync_per:.2f}"
        print(line, flush=True)
    if len(rows) > 1:
        print(f"time per resource at {rows[-1][0]} tenants / at {rows[0][0]}: {rows[-1][1] / rows[0][1]:.2f}")
    print("\nlongest dependency chain in the prod plan (what `pulumi up` waits for in sequence):")
    for i, (type_, name) in enumerate(critical_path(), 1):
        print(f"  {i:>2}. {type_}  {name}")


if __name__ == "__main__":
    main()
