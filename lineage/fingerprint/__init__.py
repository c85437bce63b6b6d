"""Weight fingerprints: a few sampled rows of every tensor, read by byte ranges.

>>> fingerprint = fingerprint_checkpoint(files.range_reader, ["model.safetensors"], repo_id="org/m")
>>> fingerprint.bytes_read / fingerprint.weight_bytes  # a small fraction
"""

from lineage.fingerprint.read import (
    FingerprintUnavailableError,
    fingerprint_checkpoint,
    is_weight_file,
)
from lineage.fingerprint.record import Fingerprint, TensorSample, architecture_signature
from lineage.fingerprint.selection import METHOD_VERSION, select

__all__ = [
    "METHOD_VERSION",
    "Fingerprint",
    "FingerprintUnavailableError",
    "TensorSample",
    "architecture_signature",
    "fingerprint_checkpoint",
    "is_weight_file",
    "select",
]
