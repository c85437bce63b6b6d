"""The bearer token the ``hub`` fixture's loopback Hub accepts (tests/conftest.py)."""

GOOD_TOKEN = "hf_lineage_test_token"
