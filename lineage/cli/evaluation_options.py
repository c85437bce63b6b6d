"""The options of every command that evaluates models: suites, judge and generation.

Declared once so that each such command (``lineage audit`` today) takes the same flags with
the same help; the lists of names come from the plug-in registries, never written by hand.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from audit.judges import JUDGES
from audit.suites.builtin import BUILTIN_SUITES
from audit.suites.formats import SUITE_FORMATS

if TYPE_CHECKING:
    from audit.executors import Executor

# The formats recognised by name and columns: every registered one but the generic reader.
PUBLISHED_FORMATS = ", ".join(name for name in SUITE_FORMATS if name != "generic")

SuiteOption = Annotated[
    list[str] | None,
    typer.Option(
        "--suite",
        metavar="SPEC",
        # Rich reads "[...]" as markup: each "[" of the grammar is escaped.
        help="Suite to run (repeatable; default: harmful, benign, capability). SPEC is"
        r" \[FORMAT:]\[KIND:]\[prompt=COLUMN:]\[contextual:]SOURCE; SOURCE: a built-in"
        f" name ({', '.join(BUILTIN_SUITES)}), a benchmark file or HEx-PHI folder, or a"
        r" Hub dataset (org/name, hf:org/name\[@rev]\[:path]). Published files are"
        f" recognised by name and columns: {PUBLISHED_FORMATS}. Say what any other"
        " file means: KIND is harmful (ASR),"
        " benign (over-refusal) or capability (needs an answer column); prompt=COLUMN"
        " names the prompt column; contextual adds HarmBench's contextual behaviors."
        " E.g. xstest:harmful:xstest_prompts.csv, benign:prompt=question:faq.csv.",
    ),
]
JudgeOption = Annotated[str, typer.Option(help=f"One of: {', '.join(JUDGES)}.")]
MaxNewTokensOption = Annotated[int, typer.Option(min=1, help="Tokens generated per prompt.")]
BatchSizeOption = Annotated[
    int | None, typer.Option(min=1, help="Prompts per batch (default: auto, halved on OOM).")
]
DeviceOption = Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N or mps.")]
DtypeOption = Annotated[str, typer.Option(help="auto, float32, bfloat16 or float16.")]
SystemPromptOption = Annotated[
    str | None, typer.Option(help="System prompt given to every model alike.")
]
TrustRemoteCodeOption = Annotated[
    bool, typer.Option("--trust-remote-code", help="Run code shipped in repos (unsafe).")
]
AllowPickleOption = Annotated[
    bool, typer.Option("--allow-pickle", help="Load pickle-only weights (weights_only=True).")
]

ExecutorOption = Annotated[
    str,
    typer.Option(
        "--executor",
        help="Where evaluations run: local (this process) or ray (Ray tasks; pip install"
        " 'lineage-audit[ray]').",
    ),
]
RayAddressOption = Annotated[
    str | None,
    typer.Option(
        "--ray-address",
        help="Join this Ray cluster (the registry must then be PostgreSQL); default: a local"
        " Ray instance.",
    ),
]
WorkersOption = Annotated[
    int | None,
    typer.Option("--workers", min=1, help="CPUs of a local Ray instance (default: all)."),
]


def build_executor(name: str, address: str | None, workers: int | None) -> Executor:
    """The executor named on the command line; an unknown name is a one-line error."""
    from audit.executors import EXECUTORS, ExecutorOptions

    return EXECUTORS.get(name).build(ExecutorOptions(workers=workers, address=address))


BackendOption = Annotated[
    str,
    typer.Option(
        "--backend",
        help="Generation backend: auto (vLLM when installed, else transformers),"
        " transformers, or vllm (pip install 'lineage-audit[vllm]').",
    ),
]


def chosen_backend(name: str) -> str:
    """The backend named on the command line, checked: an unknown name is a one-line error.
    ``auto`` is decided later, once for all the models of the audit or sweep, from their
    config.json files (``audit.backends.choose_backend``)."""
    from audit.backends import AUTO, BACKENDS

    if name != AUTO:
        BACKENDS.get(name)  # an unknown name is a one-line error listing the known ones
    return name
