"""Stream processors: decode, load state, apply the rules, persist, publish."""
