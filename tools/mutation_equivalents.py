"""Mutants that change no behaviour, with the reason; tools.mutation reports them apart and
leaves them out of the score. Each entry: (a fragment of the mutated line, the change as
tools.mutation prints it, why the program behaves the same)."""

EQUIVALENT: dict[str, list[tuple[str, str, str]]] = {
    "components/tenancy.py": [
        ("policy: dict = {",
         "drop dict entry 'policyTypes'",
         "Kubernetes defaults policyTypes from the rules present (Ingress, plus Egress when there are egress "
         "rules): the same types whenever the policy has ingress sources, and when it has only the istiod egress "
         "the extra Ingress type adds no rule, so default-deny already isolates the pods the same way."),
    ],
}
