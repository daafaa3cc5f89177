"""CLI: `python -m stacks plan [STACK] [--config FILE] [--json FILE]`."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stacks", description="ai-platform stack tools")
    sub = parser.add_subparsers(dest="command", required=True)
    plan = sub.add_parser(
        "plan",
        help="check a stack offline: run the program under mocks, run the policy pack, validate every object",
        description="Exit 0 clean, 1 on a mandatory policy violation or invalid object, 2 on invalid config.",
    )
    plan.add_argument("stack", nargs="?", help="stack name; reads Pulumi.<stack>.yaml (default: dev)")
    plan.add_argument("--config", metavar="FILE", help="plan this stack file instead of Pulumi.<stack>.yaml")
    plan.add_argument("--json", metavar="FILE", help="write the machine-readable report here")
    plan.add_argument("--quiet", action="store_true", help="print only the summary when the plan passes")
    plan.add_argument("--policy-config", metavar="FILE",
                      help="policy pack config (default: policies/policy-config.<stack>.json, else policy-config.json)")
    plan.add_argument("--served-pack", action="store_true",
                      help="evaluate the policy pack through its own gRPC server, started as the Pulumi engine "
                           "starts it (default: pulumi_policy's servicer in-process; the verdicts are the same)")
    policies = sub.add_parser("policies", help="list every policy of the pack (Markdown table, or --json)")
    policies.add_argument("--json", action="store_true",
                          help="a JSON array of {name, description, severity, enforcementLevel, framework, config}")
    policy_sub = policies.add_subparsers(dest="policies_command", metavar="test")
    ptest = policy_sub.add_parser(
        "test", help="run allowed/disallowed policy samples through the served pack and print a table",
        description="Exit 0 when every sample gives the expected verdict, 1 otherwise, 2 on malformed samples.")
    ptest.add_argument("samples", help="folder of <policy>.yaml sample files (see tests/policy_samples)")
    ptest.add_argument("--all", action="store_true", help="also fail when a policy of the pack has no allowed or "
                                                          "no disallowed sample")
    ptest.add_argument("--in-process", action="store_true",
                       help="use pulumi_policy's servicer in this process instead of starting the pack's server")
    pre = sub.add_parser("preflight", help="check GPU instance offerings, GPU counts and EC2 quotas (AWS, boto3)",
                         description="Exit 0 clean, 1 on a blocking problem, 2 invalid config, 3 no credentials.")
    pre.add_argument("stack", nargs="?", help="stack name; reads Pulumi.<stack>.yaml (default: dev)")
    pre.add_argument("--config", metavar="FILE", help="check this stack file instead")
    boot = sub.add_parser("bootstrap-backend", help="create (idempotently) a secure S3 bucket for Pulumi state")
    boot.add_argument("--bucket", required=True)
    boot.add_argument("--region", required=True)
    up = sub.add_parser("upstream", help="download the pinned upstream chart values, CRDs and schema")
    up.add_argument("--dest", default="upstream", help="target folder (default: ./upstream)")
    sub.add_parser("config-reference", help="print the stack config reference (Markdown) generated from the schema")
    args = parser.parse_args(argv)

    if args.command == "policies" and args.policies_command == "test":
        from .policy_test import main as test_main

        return test_main(args.samples, args.all, args.in_process)
    if args.command == "policies":
        import json

        from .reference import policy_markdown, policy_rows

        print(json.dumps(policy_rows(), indent=2) if args.json else policy_markdown())
        return 0
    if args.command == "preflight":
        from .preflight import main as preflight_main

        return preflight_main(args.stack, args.config)
    if args.command == "bootstrap-backend":
        from .backend import main as backend_main

        return backend_main(args.bucket, args.region)
    if args.command == "upstream":
        from .upstream import main as upstream_main

        return upstream_main(args.dest)
    if args.command == "config-reference":
        from .reference import markdown

        print(markdown())
        return 0

    if args.command == "plan":
        from .plan import main as plan_main

        return plan_main(args.stack, args.config, args.json, args.quiet, args.policy_config, args.served_pack)
    return 2


if __name__ == "__main__":
    sys.exit(main())
