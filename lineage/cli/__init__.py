"""The ``lineage`` command line (Typer): one module per command family, printing with Rich.

The top layer: it parses arguments, calls the stages (the main job through
``lineage.pipeline.run_audit_job``) and renders what they return. Nothing below imports it.
"""
