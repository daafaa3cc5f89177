"""Which GPUs each machine type carries, per cloud.

Used to label GPU pools with their model and to reject a pool whose stated GPU
model or count contradicts its machine type before anything is deployed.
"""

from __future__ import annotations

# instance type -> (GPU model label, GPUs per node). Source: EC2 accelerated computing
# instance specifications.
_AWS_FAMILIES: dict[str, tuple[str, dict[str, int]]] = {
    "p3": ("v100", {"2xlarge": 1, "8xlarge": 4, "16xlarge": 8}),
    "p3dn": ("v100", {"24xlarge": 8}),
    "p4d": ("a100", {"24xlarge": 8}),
    "p4de": ("a100-80gb", {"24xlarge": 8}),
    "p5": ("h100", {"4xlarge": 1, "48xlarge": 8}),
    "p5e": ("h200", {"48xlarge": 8}),
    "p5en": ("h200", {"48xlarge": 8}),
    "p6-b200": ("b200", {"48xlarge": 8}),
    "g4dn": ("t4", {"xlarge": 1, "2xlarge": 1, "4xlarge": 1, "8xlarge": 1, "16xlarge": 1,
                    "12xlarge": 4, "metal": 8}),
    "g5": ("a10g", {"xlarge": 1, "2xlarge": 1, "4xlarge": 1, "8xlarge": 1, "16xlarge": 1,
                    "12xlarge": 4, "24xlarge": 4, "48xlarge": 8}),
    "g6": ("l4", {"xlarge": 1, "2xlarge": 1, "4xlarge": 1, "8xlarge": 1, "16xlarge": 1,
                  "12xlarge": 4, "24xlarge": 4, "48xlarge": 8}),
    "g6e": ("l40s", {"xlarge": 1, "2xlarge": 1, "4xlarge": 1, "8xlarge": 1, "16xlarge": 1,
                     "12xlarge": 4, "24xlarge": 4, "48xlarge": 8}),
}

AWS_GPU_INSTANCES: dict[str, tuple[str, int]] = {
    f"{family}.{size}": (model, count)
    for family, (model, sizes) in _AWS_FAMILIES.items()
    for size, count in sizes.items()
}

CATALOGS: dict[str, dict[str, tuple[str, int]]] = {"aws": AWS_GPU_INSTANCES}


def lookup(cloud: str, machine_type: str) -> tuple[str, int] | None:
    """(GPU model, GPUs per node) for a known machine type, else None."""
    return CATALOGS.get(cloud, {}).get(machine_type)
