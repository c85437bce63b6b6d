"""Remediation: merging the aligned model back into its fine-tune, θ(λ) = (1−λ)·θ_aligned + λ·θ_ft.

``merge.merge_linear`` writes one θ(λ) streamed, in the fine-tune's safetensors layout, and
never leaves a half-written model; ``errors`` holds what stops it.
"""

from lineage.remediate.merge import MergeResult, WrittenFile, merge_linear

__all__ = ["MergeResult", "WrittenFile", "merge_linear"]
