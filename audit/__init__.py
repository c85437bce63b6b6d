"""audit: re-run safety and capability evaluations on merged models and their parents.

Suites, generation, judges and paired statistics live here; the stage reads models the
lineage stage recorded in the registry and writes evaluation runs and findings back.
"""
