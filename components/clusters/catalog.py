"""Which GPUs each machine type carries, per cloud.

Used to label GPU pools with their model, to pick GKE accelerator types, and to reject
a pool whose stated GPU model, count or accelerator contradicts its machine type before
anything is deployed.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GpuMachine:
    model: str
    gpus: int
    accelerator: str | None = None  # GKE guest accelerator type


def _sizes(model: str, sizes: dict[str, int], prefix: str, sep: str = ".", accelerator: str | None = None):
    return {f"{prefix}{sep}{size}": GpuMachine(model, n, accelerator) for size, n in sizes.items()}


_ONE_TO_EIGHT = {"xlarge": 1, "2xlarge": 1, "4xlarge": 1, "8xlarge": 1, "16xlarge": 1, "12xlarge": 4,
                 "24xlarge": 4, "48xlarge": 8}

# Source: EC2 accelerated computing instance specifications.
AWS: dict[str, GpuMachine] = {
    **_sizes("v100", {"2xlarge": 1, "8xlarge": 4, "16xlarge": 8}, "p3"),
    **_sizes("v100", {"24xlarge": 8}, "p3dn"),
    **_sizes("a100", {"24xlarge": 8}, "p4d"),
    **_sizes("a100-80gb", {"24xlarge": 8}, "p4de"),
    **_sizes("h100", {"4xlarge": 1, "48xlarge": 8}, "p5"),
    **_sizes("h200", {"48xlarge": 8}, "p5e"),
    **_sizes("h200", {"48xlarge": 8}, "p5en"),
    **_sizes("b200", {"48xlarge": 8}, "p6-b200"),
    **_sizes("t4", {**{k: 1 for k in ("xlarge", "2xlarge", "4xlarge", "8xlarge", "16xlarge")}, "12xlarge": 4,
                    "metal": 8}, "g4dn"),
    **_sizes("a10g", _ONE_TO_EIGHT, "g5"),
    **_sizes("l4", _ONE_TO_EIGHT, "g6"),
    **_sizes("l40s", _ONE_TO_EIGHT, "g6e"),
}

# Source: Compute Engine GPU machine types (accelerator-optimized families).
GCP: dict[str, GpuMachine] = {
    **_sizes("a100", {"1g": 1, "2g": 2, "4g": 4, "8g": 8}, "a2-highgpu", "-", "nvidia-tesla-a100"),
    **_sizes("a100", {"16g": 16}, "a2-megagpu", "-", "nvidia-tesla-a100"),
    **_sizes("a100-80gb", {"1g": 1, "2g": 2, "4g": 4, "8g": 8}, "a2-ultragpu", "-", "nvidia-a100-80gb"),
    **_sizes("h100", {"1g": 1, "2g": 2, "4g": 4, "8g": 8}, "a3-highgpu", "-", "nvidia-h100-80gb"),
    **_sizes("h100-mega", {"8g": 8}, "a3-megagpu", "-", "nvidia-h100-mega-80gb"),
    **_sizes("h200", {"8g": 8}, "a3-ultragpu", "-", "nvidia-h200-141gb"),
    **_sizes("b200", {"8g": 8}, "a4-highgpu", "-", "nvidia-b200"),
    **_sizes("l4", {"4": 1, "8": 1, "12": 1, "16": 1, "32": 1, "24": 2, "48": 4, "96": 8}, "g2-standard", "-",
             "nvidia-l4"),
}
# N1 machines take attachable GPUs: the accelerator and count come from the pool.
GCP_N1_ACCELERATORS: dict[str, str] = {
    "nvidia-tesla-t4": "t4",
    "nvidia-tesla-v100": "v100",
    "nvidia-tesla-p4": "p4",
    "nvidia-tesla-p100": "p100",
}

# Source: Azure GPU-accelerated VM sizes (NC, ND, NV families).
AZURE: dict[str, GpuMachine] = {
    "Standard_NC24ads_A100_v4": GpuMachine("a100-80gb", 1),
    "Standard_NC48ads_A100_v4": GpuMachine("a100-80gb", 2),
    "Standard_NC96ads_A100_v4": GpuMachine("a100-80gb", 4),
    "Standard_ND96asr_v4": GpuMachine("a100", 8),
    "Standard_ND96amsr_A100_v4": GpuMachine("a100-80gb", 8),
    "Standard_ND96isr_H100_v5": GpuMachine("h100", 8),
    "Standard_NC40ads_H100_v5": GpuMachine("h100-nvl", 1),
    "Standard_NC80adis_H100_v5": GpuMachine("h100-nvl", 2),
    "Standard_ND96isr_H200_v5": GpuMachine("h200", 8),
    "Standard_NC4as_T4_v3": GpuMachine("t4", 1),
    "Standard_NC8as_T4_v3": GpuMachine("t4", 1),
    "Standard_NC16as_T4_v3": GpuMachine("t4", 1),
    "Standard_NC64as_T4_v3": GpuMachine("t4", 4),
    "Standard_NC6s_v3": GpuMachine("v100", 1),
    "Standard_NC12s_v3": GpuMachine("v100", 2),
    "Standard_NC24s_v3": GpuMachine("v100", 4),
    "Standard_NV36ads_A10_v5": GpuMachine("a10", 1),
    "Standard_NV72ads_A10_v5": GpuMachine("a10", 2),
}

CATALOGS: dict[str, dict[str, GpuMachine]] = {"aws": AWS, "gcp": GCP, "azure": AZURE}

# MIG profiles each GPU offers (NVIDIA MIG User Guide, "Supported MIG Profiles"), as
# `<slices>g.<memory>gb` -> instances of that profile one GPU holds.
_H100_80GB = {"1g.10gb": 7, "1g.20gb": 4, "2g.20gb": 3, "3g.40gb": 2, "4g.40gb": 1, "7g.80gb": 1}
MIG_PROFILES: dict[str, dict[str, int]] = {
    "a30": {"1g.6gb": 4, "2g.12gb": 2, "4g.24gb": 1},
    "a100": {"1g.5gb": 7, "1g.10gb": 4, "2g.10gb": 3, "3g.20gb": 2, "4g.20gb": 1, "7g.40gb": 1},
    "a100-80gb": _H100_80GB,
    "h100": _H100_80GB,
    "h100-mega": _H100_80GB,
    "h100-nvl": {"1g.12gb": 7, "1g.24gb": 4, "2g.24gb": 3, "3g.47gb": 2, "4g.47gb": 1, "7g.94gb": 1},
    "h200": {"1g.18gb": 7, "1g.35gb": 4, "2g.35gb": 3, "3g.71gb": 2, "4g.71gb": 1, "7g.141gb": 1},
    "b200": {"1g.23gb": 7, "1g.45gb": 4, "2g.45gb": 3, "3g.90gb": 2, "4g.90gb": 1, "7g.180gb": 1},
}
# GPUs that can be split into MIG instances.
MIG_CAPABLE = frozenset(MIG_PROFILES)


def lookup(cloud: str, machine_type: str | None) -> GpuMachine | None:
    """The GPUs of a known machine type, else None."""
    return CATALOGS.get(cloud, {}).get(machine_type or "")
