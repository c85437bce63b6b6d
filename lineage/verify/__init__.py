"""Verify declared lineage against weight fingerprints; find hidden parents and recipes.

>>> report = verify(registry, "org/merged-model")
>>> report.to_dict()["declared"][0]["status"]
'confirmed'
"""

from lineage.verify.report import DeclaredVerdict, InferredParent, VerifyReport
from lineage.verify.verifier import NotVerifiableError, verify

__all__ = ["DeclaredVerdict", "InferredParent", "NotVerifiableError", "VerifyReport", "verify"]
