"""The ai-platform CrossGuard policy pack. Rules live in `rules/` so tests and the
offline plan use them without starting the pack's server."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pulumi_policy import PolicyPack  # noqa: E402
from rules import ALL_POLICIES  # noqa: E402

PolicyPack(name="ai-platform", policies=list(ALL_POLICIES))
