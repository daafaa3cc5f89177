"""The ai-platform CrossGuard policy pack. Rules live in `rules/` so that the offline plan
can hand them to pulumi_policy's own Analyzer servicer in-process (stacks/analyzer.py)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pulumi_policy import PolicyPack  # noqa: E402
from rules import ALL_POLICIES, PACK_NAME  # noqa: E402

PolicyPack(name=PACK_NAME, policies=list(ALL_POLICIES))
