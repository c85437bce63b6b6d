"""Find every mergekit recipe a card or config file holds, and order them into stages.

Real cards hold recipes in many shapes: mergekit's own "### Configuration" block; several
fenced blocks, one per step of a multi-step merge; a YAML stream of documents separated by
``---`` with ``name:`` keys (mergekit-mega); two configs pasted back to back in one fence
(duplicate keys); mergekit-moe configs; a recipe pasted as plain markdown with no fence. A
block that does not parse is a warning naming the file and line, never the end of the card.

The model's own recipe is the **final** stage. An earlier stage whose output a later stage
uses (by its ``name:``, or by a local name that no Hub repo has) is an *intermediate*
model: a node of its own, with its own parents, so that the graph shows the chain instead
of flattening it into wrong direct parents.

>>> body = "```yaml\\nmerge_method: slerp\\nbase_model: a/x\\n"
>>> body += "models: [{model: a/x}, {model: b/y}]\\nparameters: {t: 0.5}\\n```\\n"
>>> stages = read_recipes(find_recipe_blocks(body), repo_id="me/m", filename="README.md")
>>> stages.final.merge_method, [s.name for s in stages.intermediates]
('slerp', [])
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from lineage.bounded import load_yaml_documents
from lineage.errors import MalformedFileError
from lineage.mergekit_config import is_recipe_mapping, recipe_from_mapping
from lineage.records import MergeModelEntry, MergeRecipe, RecipeBlock
from lineage.references import parse_reference

# Patterns run on single lines and cannot backtrack much: cards are hostile.
_FENCE_OPEN = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")
_HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+(.*)$")
_MERGEKIT_SENTENCE = "yaml configuration was used to produce this model"
_RECIPE_KEY = re.compile(
    r"^[ \t]*(?:-[ \t]*)?(?:yaml)?(merge_method|experts|gate_mode)[ \t]*:", re.MULTILINE
)
# A recipe pasted as plain markdown starts at one of mergekit's top-level keys...
_PLAIN_START = re.compile(
    r"^((models|slices|merge_method|base_model|experts|gate_mode|name)[ \t]*:|"
    r"[ \t]*-[ \t]*(model|source_model|base_model)[ \t]*:)",
    re.ASCII,
)
# ... and goes on while lines look like YAML: keys, list items, indented or blank lines.
_PLAIN_CONTINUES = re.compile(r"^([ \t]+\S|- |[A-Za-z_][A-Za-z0-9_-]*[ \t]*:|#|\s*$)", re.ASCII)
_YAML_LANGUAGES = ("yaml", "yml", "")
_LENIENT_KEY = re.compile(r"^([ \t]*)(?:-[ \t]*)?([A-Za-z_]{1,40})[ \t]*:(.*)$")
_LENIENT_PARAMETERS = frozenset({"weight", "density", "t", "gamma", "epsilon", "lambda"})
_LENIENT_PAIR = re.compile(
    r"\b(weight|density|t|gamma|epsilon|lambda)[ \t]*:[ \t]*(-?\d+(?:\.\d+)?)"
)
_QUOTED_CARD = re.compile(
    r"original model card|original card|model card of the original|original readme", re.I
)
MAX_BLOCKS = 64  # more recipe blocks than any real card: a bound against hostile cards


@dataclass
class RecipeStages:
    """The recipes of one file, in order: intermediates first, the model's own last."""

    final: MergeRecipe | None = None
    intermediates: list[MergeRecipe] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # Inputs of earlier stages the final one builds on (through intermediates or stages
    # named by a heading): ancestors of the model, not its direct parents.
    ancestors: set[str] = field(default_factory=set)


def find_recipe_blocks(body: str, *, first_line: int = 1) -> list[RecipeBlock]:
    """Fenced YAML (or unlabelled) blocks that hold a recipe key, and plain-markdown recipes.

    Scans line by line: linear in the card's size. ``first_line`` is the body's first line
    in the file, so that warnings point into README.md.
    """
    blocks: list[RecipeBlock] = []
    in_configuration_section = False
    heading_text: str | None = None
    fence: str | None = None
    language = ""
    fence_line = 0
    collected: list[str] = []
    plain: list[str] = []
    plain_line = 0

    def close_plain() -> None:
        nonlocal plain
        text = "\n".join(plain).strip("\n")
        if plain and _RECIPE_KEY.search(text):
            blocks.append(
                RecipeBlock(text + "\n", plain_line, False, in_configuration_section, heading_text)
            )
        plain = []

    lines = body.splitlines()
    for number, line in enumerate(lines, start=first_line):
        if fence is not None:
            stripped = line.strip()
            if stripped.startswith(fence[0] * len(fence)) and not stripped.strip(fence[0]):
                text = "\n".join(collected).strip("\n") + "\n"
                if language in _YAML_LANGUAGES and _RECIPE_KEY.search(text):
                    blocks.append(
                        RecipeBlock(text, fence_line, True, in_configuration_section, heading_text)
                    )
                fence, collected = None, []
            else:
                collected.append(line)
            continue
        if plain:
            if _PLAIN_CONTINUES.match(line) and not _HEADING.match(line):
                plain.append(line)
                continue
            close_plain()
        opening = _FENCE_OPEN.match(line)
        info = opening.group(2).strip() if opening else ""
        if opening and not (opening.group(1)[0] == "`" and "`" in info):
            # Info strings seen on real cards: "yaml", "YAML", ".yaml:", "yml {.line-numbers}".
            language = re.sub(r"[^a-z]", "", (info.split() or [""])[0].lower())
            fence = opening.group(1)
            fence_line = number + 1
            continue
        heading = _HEADING.match(line)
        if heading and _QUOTED_CARD.search(heading.group(1)):
            break  # a quantizer pastes the source's card: its recipe is the source's
        if heading:
            in_configuration_section = "configuration" in heading.group(1).lower()
            heading_text = heading.group(1).strip(" #*`")[:200] or None
        elif _MERGEKIT_SENTENCE in line.lower():
            in_configuration_section = True
        elif _PLAIN_START.match(line):
            plain, plain_line = [line], number
        if len(blocks) >= MAX_BLOCKS:
            break
    close_plain()
    return blocks[:MAX_BLOCKS]


def read_recipes(blocks: list[RecipeBlock], *, repo_id: str | None, filename: str) -> RecipeStages:
    """Parse every block into recipes and order them into stages; never raises for a block.

    Non-recipe YAML (an axolotl or training config) is skipped quietly; a block that does not
    parse, or a recipe that mergekit would reject, is a warning naming the file and line.
    """
    stages = RecipeStages()
    recipes: list[MergeRecipe] = []
    for block in blocks:
        try:
            documents = load_yaml_documents(
                block.text,
                repo_id=repo_id,
                filename=filename,
                what=f"YAML block at line {block.line}",
                first_line=block.line,
            )
        except MalformedFileError as error:
            stages.warnings.append(str(error))
            recipe = read_leniently(block)
            if recipe is not None:
                stages.warnings.append(_lenient_note(repo_id, filename, recipe))
                recipes.append(recipe)
            continue
        for document in documents:
            if not is_recipe_mapping(document.data):
                continue
            where = f"{_label(repo_id, filename)} line {document.line}"
            if document.split_from_duplicates:
                stages.warnings.append(
                    f"{where}: two recipes written back to back in one block (repeated "
                    "top-level keys); read as separate stages"
                )
            if document.duplicate_keys:
                stages.warnings.append(
                    f"{where}: repeated key(s) {', '.join(document.duplicate_keys)}; "
                    "the last value is what mergekit reads"
                )
            try:
                recipe = recipe_from_mapping(document.data, repo_id=repo_id, filename=filename)
            except MalformedFileError as error:
                stages.warnings.append(f"{error!s} (line {document.line})")
                lenient = read_leniently(block) if len(documents) == 1 else None
                if lenient is not None:
                    stages.warnings.append(_lenient_note(repo_id, filename, lenient))
                    recipes.append(lenient)
                continue
            recipe.source_line = document.line
            recipe.fenced = block.fenced
            recipe.heading = block.heading
            recipes.append(recipe)
    if not recipes:
        return stages
    _order_stages(recipes, stages, repo_id=repo_id, filename=filename)
    return stages


def read_leniently(block: RecipeBlock) -> MergeRecipe | None:
    """A recipe read line by line from YAML that does not parse or validate, or None.

    Real cards mangle recipes: prose above the YAML in one fence, lost indentation and
    keys, ``weight: 0.41 / density: 0.50`` on one line, a fence's language glued to the
    first key (``yamlbase_model:``). The model references are still plain to read; what is
    read this way is weaker evidence, and the YAML's own error is always reported beside it.
    """
    method: str | None = None
    base: str | None = None
    models: dict[str, dict[str, Any]] = {}
    global_parameters: dict[str, Any] = {}
    current: dict[str, Any] | None = None
    for line in block.text.splitlines():
        key_value = _LENIENT_KEY.match(line)
        if key_value is None:
            continue
        indent, key, value = len(key_value[1]), key_value[2].lower(), key_value[3].strip()
        key = key.removeprefix("yaml")
        if key == "merge_method" and value:
            method = value.split()[0]
        elif key == "base_model" and value:
            base = _reference_word(value)
            current = models.setdefault(base, {}) if indent else None
        elif key in ("model", "source_model") and value:
            current = models.setdefault(_reference_word(value), {})
        elif key == "parameters" and indent == 0:
            current = global_parameters
        elif key in _LENIENT_PARAMETERS:
            for name, number in _LENIENT_PAIR.findall(line):
                target = current if current is not None else global_parameters
                target[name.lower()] = float(number) if "." in number else int(number)
        elif key == "experts":
            method = method or "moe"
    if not models or (method is None and base is None):
        return None
    entries = [
        MergeModelEntry(reference=ref, parameters=params)
        for ref, params in models.items()
        if ref != base or params
    ]
    return MergeRecipe(
        merge_method=method or "unknown",
        base_model=base,
        models=entries,
        parameters=global_parameters,
        source_line=block.line,
        fenced=False,
        lenient=True,
        heading=block.heading,
    )


def _lenient_note(repo_id: str | None, filename: str, recipe: MergeRecipe) -> str:
    return (
        f"{_label(repo_id, filename)} line {recipe.source_line}: the recipe is not valid YAML; "
        f"read line by line ({recipe.merge_method}, {len(recipe.models)} models): weaker evidence"
    )


def _reference_word(value: str) -> str:
    return value.split()[0].strip("`'\",")


def _order_stages(
    recipes: list[MergeRecipe], stages: RecipeStages, *, repo_id: str | None, filename: str
) -> None:
    """The final stage, and the earlier stages a later one uses, each with its name.

    A stage's output is named by its ``name:`` (mergekit-mega), or else it is the local name
    (not a Hub repo) that another stage takes as an input and that no stage produces yet:
    the nearest stage before it that does not use that name (cards show the steps in order),
    or failing that the nearest after it (some cards show the final recipe first). The final
    stage is the one whose output no other stage uses; of several, mergekit-mega's unnamed
    one, else the last.
    """
    producers: dict[int, str] = {
        index: recipe.name for index, recipe in enumerate(recipes) if recipe.name
    }
    named = set(producers.values())
    by_heading = _heading_names(recipes)
    for user, recipe in enumerate(recipes):
        for reference in _inputs(recipe):
            if reference in named:
                continue
            heading_stage = by_heading.get(_short_name(reference))
            if heading_stage is not None and heading_stage != user:
                producers.setdefault(heading_stage, reference)
                named.add(reference)
                continue
            if parse_reference(reference).kind != "local_path":
                continue
            producer = _producer_of(reference, user, recipes, producers)
            if producer is not None:
                producers[producer] = reference
                named.add(reference)
    used = {reference for recipe in recipes for reference in _inputs(recipe)}
    sinks = [index for index in range(len(recipes)) if producers.get(index) not in used]
    unnamed_sinks = [index for index in sinks if not recipes[index].name]
    final_index = (unnamed_sinks or sinks or [len(recipes) - 1])[-1]
    for index, recipe in enumerate(recipes):
        if index == final_index:
            continue
        name = producers.get(index)
        if name is None or name not in used:
            stages.warnings.append(
                f"{_label(repo_id, filename)} line {recipe.source_line}: recipe {index + 1} of "
                f"{len(recipes)} is not used by another stage; not part of this model's lineage"
            )
            continue
        if parse_reference(name).kind == "repo":
            # A stage named by a Hub id ("### Umbral-Mind-5", used as org/Umbral-Mind-5) is
            # that repo: the crawl reads its own lineage; its inputs are ancestors here.
            continue
        recipe.name = name
        stages.intermediates.append(recipe)
    stages.intermediates.sort(key=lambda stage: _depth(stage, stages.intermediates))
    stages.final = recipes[final_index]
    stages.ancestors = _ancestor_inputs(recipes, final_index, producers)


def _heading_names(recipes: list[MergeRecipe]) -> dict[str, int]:
    """A stage's heading, as a model name (its last path part, lower case) -> its index."""
    names: dict[str, int] = {}
    for index, recipe in enumerate(recipes):
        if recipe.heading:
            words = recipe.heading.split()
            if len(words) == 1:
                names.setdefault(_short_name(words[0]), index)
    return names


def _short_name(reference: str) -> str:
    return reference.rstrip("/").rsplit("/", 1)[-1].lower()


def _ancestor_inputs(
    recipes: list[MergeRecipe], final_index: int, producers: dict[int, str]
) -> set[str]:
    """Inputs of the stages the final one takes in, and of theirs, transitively."""
    made_by = {name: index for index, name in producers.items()}
    seen: set[int] = set()
    pending = [final_index]
    ancestors: set[str] = set()
    while pending:
        index = pending.pop()
        for reference in _inputs(recipes[index]):
            producer = made_by.get(reference)
            if producer is not None and producer not in seen and producer != final_index:
                seen.add(producer)
                pending.append(producer)
                ancestors.update(_inputs(recipes[producer]))
    return ancestors - set(_inputs(recipes[final_index]))


def _producer_of(
    reference: str, user: int, recipes: list[MergeRecipe], producers: dict[int, str]
) -> int | None:
    """The stage that most plausibly made ``reference``, which stage ``user`` takes in."""

    def free(index: int) -> bool:
        return index not in producers and reference not in _inputs(recipes[index])

    before = [index for index in range(user - 1, -1, -1) if free(index)]
    after = [index for index in range(user + 1, len(recipes)) if free(index)]
    return (before or after or [None])[0]


def _depth(
    stage: MergeRecipe, stages: list[MergeRecipe], seen: frozenset[str] = frozenset()
) -> int:
    """How many stages feed this one: earlier stages first in the recorded order."""
    names = {other.name: other for other in stages if other.name and other.name not in seen}
    inputs = [names[ref] for ref in _inputs(stage) if ref in names and ref != stage.name]
    seen = seen | {stage.name or ""}
    return 1 + max((_depth(other, stages, seen) for other in inputs), default=0)


def _inputs(recipe: MergeRecipe) -> list[str]:
    inputs = [entry.reference for entry in recipe.models]
    if recipe.base_model:
        inputs.insert(0, recipe.base_model)
    return inputs


def _label(repo_id: str | None, filename: str) -> str:
    return f"{repo_id}: {filename}" if repo_id else filename
