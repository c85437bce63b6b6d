"""The errors of remediation: what stops a merge-back before or while it is written.

Each class says its exit code, as every ``LineageError`` does: ``EXIT_USAGE`` (2) for what
the user asked wrongly (a λ outside [0, 1], two models that do not merge, a folder without
weights, an output folder that is taken or cannot be made), ``EXIT_PROBLEMS`` (1) for an I/O
failure while the merge is written (a disk that fills). Every message is one line naming the
models or the output folder, and says what to do.
"""

from __future__ import annotations

from lineage.errors import EXIT_PROBLEMS, EXIT_USAGE, LineageError


class RemediationError(LineageError):
    """The root of remediation's errors."""


class InvalidLambdaError(RemediationError):
    """λ (the fine-tune's share of the merge) is not a number in [0, 1]."""

    exit_code = EXIT_USAGE

    def __init__(self, lam: object):
        self.lam = lam
        super().__init__(
            f"λ must be a number in [0, 1] (0 is the aligned model, 1 the fine-tune), got {lam!r}"
        )


class NoWeightsError(RemediationError):
    """A model folder holds no safetensors weights (or is not a folder)."""

    exit_code = EXIT_USAGE


class NotMergeableError(RemediationError):
    """The two models differ in architecture, tensor names, shapes or dtype kinds.

    ``detail`` names the first mismatching field or tensor and its value in each model.
    """

    exit_code = EXIT_USAGE

    def __init__(self, finetune: str, aligned: str, detail: str):
        self.finetune = finetune
        self.aligned = aligned
        self.detail = detail
        super().__init__(f"{finetune} and {aligned} do not merge: {detail}")


class OutputExistsError(RemediationError):
    """The output folder exists and is not empty, and overwriting was not asked for."""

    exit_code = EXIT_USAGE


class OutputNotWritableError(RemediationError):
    """The output folder (or a temporary folder beside it) cannot be created."""

    exit_code = EXIT_USAGE


class MergeWriteError(RemediationError):
    """Writing the merge failed part way (a full disk, an I/O error); nothing was left."""

    exit_code = EXIT_PROBLEMS


class InvalidSweepError(RemediationError):
    """A sweep that cannot be run as asked: no λ given, or a budget that sets no bound."""

    exit_code = EXIT_USAGE
