"""Stack composition and the tools that run a stack (offline plan, CLI)."""
