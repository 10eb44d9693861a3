"""Admin tooling: typed command publishers, bulk CSV imports, customer views."""
