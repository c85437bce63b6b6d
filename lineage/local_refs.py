"""Local paths and folder names that cards and configs give as parents.

mergekit, PEFT and transformers record the path a model was loaded from, and merge authors
paste it into cards: ``/home/me/models/Yi-34B``, ``D:\\models\\x``, ``./merged``,
``NousResearch_Llama-2-70b-hf``, a Hub-cache snapshot folder. None of these is a Hub repo id.
This module gives each one a normalised form (one folder written two ways is one graph node)
and, where its name plausibly maps to a Hub repo, that repo as a *candidate*: a guess with a
confidence, which ``lineage verify`` can confirm from weights but which never becomes an
edge on its own.

>>> normalise_local_path("D:\\\\Models\\\\x\\\\")
'd:/Models/x'
>>> found = hub_candidate("/root/.cache/huggingface/hub/models--org--name/snapshots/" + "a" * 40)
>>> found.repo_id, found.revision == "a" * 40, found.confidence
('org/name', True, 0.9)
>>> hub_candidate("NousResearch_Llama-2-70b-hf").repo_id
'NousResearch/Llama-2-70b-hf'
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_WINDOWS_DRIVE = re.compile(r"^([A-Za-z]):(/|$)")
_HUB_CACHE_FOLDER = re.compile(
    r"(?:^|/)models--([A-Za-z0-9_.-]+?)--([A-Za-z0-9_.-]+)(?:/snapshots/([0-9a-f]{40}))?(?:/|$)"
)
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
# Folder names that say where a training run wrote, not which model it holds.
_GENERIC_FOLDER = re.compile(
    r"(checkpoint[-_]?\d*|final|output|outputs|merged?|model|models|out|tmp|weights|"
    r"snapshots?|[0-9a-f]{40}|\d+)",
    re.IGNORECASE,
)

# The Hub's oldest repos have no namespace; a bare name that is one of them is a repo id.
LEGACY_HUB_IDS = frozenset(
    {
        "gpt2",
        "gpt2-medium",
        "gpt2-large",
        "gpt2-xl",
        "distilgpt2",
        "bert-base-uncased",
        "bert-base-cased",
        "bert-large-uncased",
        "bert-large-cased",
        "bert-base-multilingual-cased",
        "distilbert-base-uncased",
        "roberta-base",
        "roberta-large",
        "xlm-roberta-base",
        "xlm-roberta-large",
        "t5-small",
        "t5-base",
        "t5-large",
        "albert-base-v2",
    }
)

# Namespaces of the organisations whose models are merged and fine-tuned most, as the Hub
# spells them: an ``org_name`` folder or an ``org/name`` path tail with one of these is a
# confident guess.
KNOWN_NAMESPACES: dict[str, str] = {
    name.lower(): name
    for name in (
        "01-ai",
        "abacusai",
        "allenai",
        "berkeley-nest",
        "bigcode",
        "codellama",
        "cognitivecomputations",
        "CohereForAI",
        "databricks",
        "deepseek-ai",
        "ehartford",
        "EleutherAI",
        "garage-bAInd",
        "google",
        "HuggingFaceH4",
        "huggyllama",
        "Intel",
        "internlm",
        "jondurbin",
        "lmsys",
        "meta-llama",
        "microsoft",
        "migtissera",
        "mistralai",
        "mlabonne",
        "mosaicml",
        "NousResearch",
        "Open-Orca",
        "openaccess-ai-collective",
        "openchat",
        "Qwen",
        "Sao10K",
        "stabilityai",
        "teknium",
        "TheBloke",
        "tiiuae",
        "Undi95",
        "unsloth",
        "upstage",
        "WizardLM",
        "WizardLMTeam",
    )
}

# Model-family name prefixes -> the namespace that publishes them: "Yi-34B" is 01-ai/Yi-34B.
FAMILY_NAMESPACES: tuple[tuple[str, str], ...] = (
    ("yi-", "01-ai"),
    ("llama-2-", "meta-llama"),
    ("meta-llama-3", "meta-llama"),
    ("llama-3", "meta-llama"),
    ("codellama-", "codellama"),
    ("mistral-", "mistralai"),
    ("mixtral-", "mistralai"),
    ("qwen", "Qwen"),
    ("gemma-", "google"),
    ("phi-", "microsoft"),
    ("falcon-", "tiiuae"),
    ("solar-", "upstage"),
    ("zephyr-", "HuggingFaceH4"),
    ("vicuna-", "lmsys"),
    ("deepseek-", "deepseek-ai"),
    ("openhermes-", "teknium"),
    ("nous-hermes-", "NousResearch"),
)


@dataclass(frozen=True)
class HubCandidate:
    """A Hub repo that a local reference plausibly names, and how sure the guess is."""

    repo_id: str
    revision: str | None = None
    confidence: float = 0.3


# First parts of two-part paths that are folders, not Hub namespaces ("output/Orca2flat").
WORKING_FOLDERS = frozenset(
    {
        "output",
        "outputs",
        "out",
        "merged",
        "merges",
        "merge",
        "models",
        "model",
        "tmp",
        "checkpoints",
        "ckpt",
        "results",
        "work",
        "workspace",
        "content",
        "data",
    }
)


def is_working_folder(text: str) -> bool:
    """``output/x``: a folder under the directory mergekit ran in, not a Hub repo."""
    namespace, slash, _ = text.partition("/")
    return bool(slash) and namespace.lower() in WORKING_FOLDERS


def is_bare_name(text: str) -> bool:
    """A single-part name (``Yi-34B``) that is not one of the Hub's namespace-less repos."""
    return "/" not in text and text.lower() not in LEGACY_HUB_IDS


def normalise_local_path(text: str) -> str:
    """One spelling per folder: forward slashes, no ``.`` or ``a/..`` parts, no trailing or
    doubled slashes, a lower-case drive letter, ``./`` before a relative path."""
    path = text.strip()
    if path.lower().startswith("file://"):
        path = path[len("file://") :]
    path = path.replace("\\", "/")
    drive = ""
    match = _WINDOWS_DRIVE.match(path)
    if match:
        drive, path = match[1].lower() + ":", path[2:]
    absolute = path.startswith("/")
    home = path.startswith("~")
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == ".." and parts and parts[-1] not in ("..", "~"):
            parts.pop()
            continue
        parts.append(part)
    body = "/".join(parts)
    if drive:
        return f"{drive}/{body}" if absolute or body else drive
    if absolute:
        return "/" + body
    if home or body.startswith(".."):
        return body or "."
    return "./" + body if body else "."


def hub_candidate(text: str) -> HubCandidate | None:
    """The Hub repo a local path or folder name plausibly names, or None."""
    path = normalise_local_path(text)
    cached = _HUB_CACHE_FOLDER.search(path)
    if cached:
        repo_id = f"{cached[1]}/{cached[2]}"
        return HubCandidate(repo_id, cached[3], 0.9 if cached[3] else 0.8)
    parts = [part for part in path.split("/") if part not in ("", ".", "..", "~")]
    while parts and _GENERIC_FOLDER.fullmatch(parts[-1]):
        parts.pop()  # ".../Yi-34B/checkpoint-500" names Yi-34B's fine-tune run
    if not parts or not _NAME.fullmatch(parts[-1]):
        return None
    name = parts[-1]
    if len(parts) >= 2 and parts[-2].lower() in KNOWN_NAMESPACES:
        return HubCandidate(f"{KNOWN_NAMESPACES[parts[-2].lower()]}/{name}", confidence=0.6)
    for separator in ("--", "_"):
        namespace, found, rest = name.partition(separator)
        if found and namespace.lower() in KNOWN_NAMESPACES and _NAME.fullmatch(rest):
            return HubCandidate(f"{KNOWN_NAMESPACES[namespace.lower()]}/{rest}", confidence=0.6)
    lowered = name.lower()
    for prefix, namespace in FAMILY_NAMESPACES:
        if lowered.startswith(prefix):
            return HubCandidate(f"{namespace}/{name}", confidence=0.4)
    namespace, found, rest = name.partition("_")
    if found and _NAME.fullmatch(namespace) and _NAME.fullmatch(rest) and "-" in rest:
        return HubCandidate(f"{namespace}/{rest}", confidence=0.2)
    return None
