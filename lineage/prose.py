"""Parents that a card names only in its prose.

Many cards state their lineage in a sentence and nowhere else: "This model is a fine-tuned
version of [org/x](https://huggingface.co/org/x)" (the Trainer's card), "This repo contains
GPTQ model files for [X](https://huggingface.co/org/x)" (quantizers), "This is a merge of
...", "Finetuned from model : org/x" (unsloth). Such a statement is weaker than the front
matter or a config: it is recorded as ``card_prose`` evidence with a low confidence, and
never outranks a declaration.

Only Hub links and ``org/name`` tokens in a sentence with a lineage verb count, in the card's
own text: not in code blocks, and not past a heading such as "Original model card", under
which quantizers paste the source model's card (whose prose names the grandparent).

>>> [m.reference for m in find_prose_mentions(
...     "This model is a fine-tuned version of [x](https://huggingface.co/org/x) on data.")]
['org/x']
"""

from __future__ import annotations

import re

from lineage.records import ProseMention

MAX_MENTIONS = 32
MAX_SENTENCE_CHARS = 300
MAX_LINE_CHARS = 4_000  # a longer line is not prose a person wrote; skip it

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+(.*)$")
# Headings under which a card quotes another model's card or lists other repos.
_QUOTED_SECTION = re.compile(
    r"original model card|original card|model card of the original|original readme|"
    r"other (quants|versions|repositories)|repositories available|related models|"
    r"provided files|quantizations?\b",
    re.IGNORECASE,
)
_LIST_ITEM = re.compile(r"^\s*[-*+]\s+")
_MERGED = re.compile(r"\b(merge of|merged (?:from|with|using)|a merge\b|slerp|mergekit)\b", re.I)
_TRAINED = re.compile(r"\b(fine-?tuned|trained on|training (?:data|procedure|details))\b", re.I)

# Lineage phrases, most specific first; each names the relation its sentence states. They
# are phrases a card uses of itself ("This model is a fine-tuned version of X"), not loose
# verbs: "X merged with Y - check it out" or "quants for X" name other models (children).
_VERBS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "merge",
        re.compile(
            r"\b(is an? (?:\w+[ -]){0,3}merge of|(?:slerp|ties|dare|linear|moe) merge of|"
            r"following models were (?:included|merged)|merge of the following|"
            r"merged using .{0,80} as a base)",
            re.IGNORECASE,
        ),
    ),
    (
        "quantized",
        re.compile(
            r"\b(quanti[sz]\w* (?:version|model|copy)s?\b[^.]{0,40}?\b(?:of|from|for|to)\b|"
            r"quanti[sz]ed (?:from|of)\b|"
            r"(?:gguf|gptq|awq|exl2|ggml)\s+(?:\w+\s+){0,2}(?:model files|files|version|"
            r"format|conversion|weights)\s+(?:of|for|from)\b|"
            r"original model\s*\W{0,4}:|converted (?:to \w+ )?from\b|"
            r"(?:gguf|gptq|awq|exl2|ggml)\s+quants?\s+of\b)",
            re.IGNORECASE,
        ),
    ),
    (
        "adapter",
        re.compile(r"\b(lora|qlora|peft) adapters? (?:for|of|on top of)\b", re.IGNORECASE),
    ),
    (
        "finetune",
        re.compile(
            r"\b(fine-?tuned? version of|fine-?tuned? (?:from|on top of)\b|"
            r"is an? fine-?tune of|finetuned from model\s*:|trained on top of|"
            r"continued pre-?training of|further (?:trained|pretrained|fine-?tuned) from|"
            r"fine-?tuned on (?=\[)|^\W*based on\b)",
            re.IGNORECASE,
        ),
    ),
)

_HUB_LINK = re.compile(
    r"https?://(?:www\.)?(?:huggingface\.co|hf\.co)/(?!datasets/|spaces/|docs/|blog/|papers/)"
    r"([A-Za-z0-9_][A-Za-z0-9_.-]{0,95})/([A-Za-z0-9_][A-Za-z0-9_.-]{0,95})"
)
_TOKEN = re.compile(
    r"(?<![\w./-])`?([A-Za-z0-9_][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9_][A-Za-z0-9_.-]{0,95})`?(?![\w/-])"
)
_BITS = re.compile(r"\d+-?bits?", re.IGNORECASE)
_NOT_NAMESPACES = frozenset(
    {"datasets", "spaces", "docs", "blog", "papers", "collections", "models", "and", "or"}
)


def find_prose_mentions(body: str, *, first_line: int = 1) -> list[ProseMention]:
    """Hub repos named as a parent in the card's prose, each with the relation its verb says."""
    mentions: list[ProseMention] = []
    seen: set[str] = set()
    in_fence = False
    list_relation: str | None = None  # "the following models were merged:" then a list
    for number, line in enumerate(body.splitlines(), start=first_line):
        if _FENCE.match(line):
            in_fence = not in_fence
            continue
        if in_fence or len(line) > MAX_LINE_CHARS:
            continue
        heading = _HEADING.match(line)
        if heading:
            if _QUOTED_SECTION.search(heading.group(1)):
                break
            list_relation = None
            continue
        relation, start = _relation_of(line)
        if relation is None and list_relation and _LIST_ITEM.match(line):
            relation, start = list_relation, 0
        elif relation is not None:
            list_relation = relation if line.rstrip().endswith(":") else None
        elif line.strip():
            list_relation = None
        if relation is None:
            continue
        # What the phrase is said of follows it: "a fine-tuned version of [X]".
        for reference in _references(line[start : start + MAX_SENTENCE_CHARS]):
            key = reference.lower()
            if key in seen:
                continue
            seen.add(key)
            sentence = " ".join(line.split())[:MAX_SENTENCE_CHARS]
            mentions.append(ProseMention(reference, relation, number, sentence))
            if len(mentions) >= MAX_MENTIONS:
                return mentions
    return mentions


def says_trained(body: str) -> bool:
    """Whether the card's own text (not a quoted card, not code) says the model was trained."""
    return _own_text_matches(body, _TRAINED)


def says_merged(body: str) -> bool:
    """Whether the card's own text says the model is a merge."""
    return _own_text_matches(body, _MERGED)


def _own_text_matches(body: str, pattern: re.Pattern[str]) -> bool:
    in_fence = False
    for line in body.splitlines():
        if _FENCE.match(line):
            in_fence = not in_fence
            continue
        heading = _HEADING.match(line)
        if heading and _QUOTED_SECTION.search(heading.group(1)):
            return False
        if not in_fence and len(line) <= MAX_LINE_CHARS and pattern.search(line):
            return True
    return False


def _relation_of(line: str) -> tuple[str | None, int]:
    """The relation a lineage phrase in ``line`` states, and where the phrase starts."""
    for relation, pattern in _VERBS:
        match = pattern.search(line)
        if match:
            return relation, match.start()
    return None, 0


def _references(line: str) -> list[str]:
    """Hub repo ids linked or written in a line, in order; other sites' links are skipped."""
    found = [f"{match[1]}/{match[2]}" for match in _HUB_LINK.finditer(line)]
    without_urls = re.sub(r"https?://\S+", " ", line)
    for match in _TOKEN.finditer(without_urls):
        namespace, _, name = match[1].partition("/")
        if namespace.lower() in _NOT_NAMESPACES or name.lower().endswith((".md", ".py", ".json")):
            continue
        if not any(c.isalpha() for c in namespace) or not any(c.isalpha() for c in name):
            continue  # "1/2", "24/7"
        if _BITS.fullmatch(namespace) or _BITS.fullmatch(name):
            continue  # "4-bit/8-bit"
        if not any(c.isdigit() or c in "-_." for c in name):
            continue  # "X/Twitter", "and/or": model names carry a size, version or dash
        found.append(match[1])
    return [ref.removesuffix(".git") for ref in dict.fromkeys(found)]
