"""Mutants that change no behaviour, with the reason; tools.mutation reports them apart and
leaves them out of the score. Each entry: (a fragment of the mutated line, the change as
tools.mutation prints it, why the program behaves the same)."""

EQUIVALENT: dict[str, list[tuple[str, str, str]]] = {}
