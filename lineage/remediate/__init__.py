"""Remediation: merging the aligned model back into its fine-tune, θ(λ) = (1−λ)·θ_aligned + λ·θ_ft.

``merge.merge_linear`` writes one θ(λ) streamed, in the fine-tune's safetensors layout, and
never leaves a half-written model; ``sweep.run_sweep`` decides which λ to evaluate, which are
within the safety budget and which to recommend; ``errors`` holds what stops either.
The package sits beside the pipeline in the import contract: the sweep will run the audit
stage on each merge and record the result in the registry.

Nothing is imported here: ``merge`` loads torch, which the CLI must not pay for at start-up.
"""
