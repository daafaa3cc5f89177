"""Kubernetes object rules (per resource)."""

from __future__ import annotations

POLICIES: tuple = ()
