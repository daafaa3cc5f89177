"""Reusable ai-platform ComponentResources. Nothing here reads stack config."""
