"""Pure rules, one module per domain area; dispatch lives in ``models.decide``."""
