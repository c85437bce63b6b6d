"""``python -m lineage``: the same as the ``lineage`` command."""

from lineage.cli.app import main

main()
