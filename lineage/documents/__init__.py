"""The typed documents that cross stage boundaries: what the auditor and the verifier
write, the registry stores and loads, and the brief, the exports and the CLI read.

They sit at the bottom of the layering (beside ``lineage.records``) so that the registry
can load them typed without importing the stages that produce them.
"""

from lineage.documents.audit import AUDIT_FORMAT_VERSION, AuditDocument
from lineage.documents.remediation import REMEDIATION_FORMAT_VERSION, RemediationDocument
from lineage.documents.verify import FORMAT_VERSION as VERIFY_FORMAT_VERSION
from lineage.documents.verify import VerifyReport

__all__ = [
    "AUDIT_FORMAT_VERSION",
    "REMEDIATION_FORMAT_VERSION",
    "VERIFY_FORMAT_VERSION",
    "AuditDocument",
    "RemediationDocument",
    "VerifyReport",
]
