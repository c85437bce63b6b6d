"""Verify declared lineage against weight fingerprints; find hidden parents and recipes.

>>> report = verify(registry, "org/merged-model")  # also stored whole in the registry
>>> report.to_dict()["declared"][0]["status"]
'confirmed'
>>> with registry.session(write=False) as session:
...     latest_verification(session, "org/merged-model").to_dict() == report.to_dict()
"""

from lineage.documents.verify import (
    FORMAT_VERSION,
    DeclaredVerdict,
    InferredParent,
    MergeEstimate,
    VerifyReport,
)
from lineage.thresholds import EXACT_RESIDUAL
from lineage.verify.errors import NotVerifiableError
from lineage.verify.verifier import verify
from registry.verifications import latest_verification, save_verification

__all__ = [
    "EXACT_RESIDUAL",
    "FORMAT_VERSION",
    "DeclaredVerdict",
    "InferredParent",
    "MergeEstimate",
    "NotVerifiableError",
    "VerifyReport",
    "latest_verification",
    "save_verification",
    "verify",
]
