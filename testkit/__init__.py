"""Test doubles and builders shared by ``tests/`` and ``benchmarks/``; not part of the product.

The loopback Hub (``hub_server.FakeHub``, its routes in ``hub_api``, repo content in
``hub_content``), the builders of repo files (``hub_repos``), the synthetic 2,000-repo Hub
(``synthetic_hub``), tiny chat models (``chat_models``) and the scoring of the real-card
corpus (``real_corpus``). Tests and benchmarks both import it from the repository root;
it is left out of the wheel (pyproject.toml lists the packages that ship).
"""
