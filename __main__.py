"""The ai-platform Pulumi program: load config, build the platform, export outputs."""

from stacks.platform import main

main()
