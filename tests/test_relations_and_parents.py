"""Relation inference and declared parents, from the files mergekit and PEFT really write."""

from __future__ import annotations

from pathlib import Path

import pytest

from lineage.adapter_config import parse_adapter_config
from lineage.cards import card_metadata_from_dict, parse_model_card
from lineage.mergekit_config import parse_mergekit_config, recipe_from_card
from lineage.model_config import model_config_from_dict, parse_model_config
from lineage.parents import declared_parents
from lineage.records import (
    AdapterConfig,
    CardMetadata,
    MergeRecipe,
    ModelConfigSummary,
    ParentLink,
)
from lineage.relations import infer_relation
from tests.support.tiny_models import TinyModels, build_merges, save_lora_adapter

# ------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyModels:
    return build_merges(tmp_path_factory.mktemp("parent-merges"))


@pytest.fixture(scope="module")
def hub_lora(tiny: TinyModels, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("hub-lora") / "lora"
    return save_lora_adapter(tiny.parent_a, out, base_repo_id="org/base")


@pytest.fixture(scope="module")
def local_lora(tiny: TinyModels, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("local-lora") / "lora"
    return save_lora_adapter(tiny.parent_a, out, base_repo_id=None)


class Parsed:
    """What a source reads from one repo, run through the parsers and the two functions."""

    def __init__(
        self,
        repo_id: str,
        *,
        card: str | None = None,
        mergekit: str | None = None,
        adapter: str | None = None,
        config: str | None = None,
        has_gguf: bool = False,
    ):
        self.card = parse_model_card(card, repo_id=repo_id) if card is not None else None
        self.mergekit = (
            parse_mergekit_config(mergekit, repo_id=repo_id)
            if mergekit is not None
            else recipe_from_card(self.card, repo_id=repo_id)
            if self.card is not None
            else None
        )
        self.adapter = parse_adapter_config(adapter, repo_id=repo_id) if adapter else None
        self.config = parse_model_config(config, repo_id=repo_id) if config else None
        self.relation, self.relation_evidence = infer_relation(
            card=self.card,
            has_adapter_config=self.adapter is not None,
            mergekit=self.mergekit,
            config=self.config,
            has_gguf=has_gguf,
        )
        links, self.warnings = declared_parents(
            repo_id,
            card=self.card,
            mergekit=self.mergekit,
            adapter=self.adapter,
            config=self.config,
            relation=self.relation,
            relation_evidence=self.relation_evidence,
        )
        self.links = links
        self.parents = {link.parent: link for link in links}


def _sources(link: ParentLink) -> list[str]:
    return [evidence.source for evidence in link.evidence]


def _hub_upload(tiny: TinyModels, method: str, *, with_config_file: bool = True) -> Parsed:
    merge = tiny.merges[method]
    return Parsed(
        f"org/{method}",
        card=merge.hub_card,
        mergekit=merge.hub_config if with_config_file else None,
        config=(merge.folder / "config.json").read_text(),
    )


# ------------------------------------------------------------------- merges by mergekit


def test_linear_merge(tiny: TinyModels) -> None:
    parsed = _hub_upload(tiny, "linear")
    assert parsed.relation == "merge"
    assert parsed.relation_evidence.source == "mergekit_config"
    assert set(parsed.parents) == {"org/base", "org/tuned"}
    base, tuned = parsed.parents["org/base"], parsed.parents["org/tuned"]
    assert (base.relation, base.merge_method, base.weight, base.role) == (
        "merge",
        "linear",
        0.3,
        None,
    )
    assert (tuned.weight, tuned.density, tuned.t) == (0.7, None, None)
    assert tuned.parameters == {"normalize": True, "weight": 0.7}
    for link in parsed.links:
        # The card's base_model list and the config file both name each parent: one link.
        assert _sources(link) == ["card.base_model", "mergekit_config"]
        assert link.evidence[0].file == "README.md"
        assert link.evidence[0].field.startswith("base_model[")
        assert link.evidence[1].file == "mergekit_config.yml"
        assert link.parent_kind == "repo" and link.declared
    assert tuned.evidence[1].field == "models[1].model"
    assert tuned.evidence[1].value == "org/tuned"
    assert parsed.warnings == []


def test_slerp_merge_keeps_the_t_gradient(tiny: TinyModels) -> None:
    parsed = _hub_upload(tiny, "slerp")
    base, tuned = parsed.parents["org/base"], parsed.parents["org/tuned"]
    assert base.role == "base" and tuned.role is None
    assert base.merge_method == tuned.merge_method == "slerp"
    assert base.t == tuned.t
    assert base.t[0] == {"filter": "self_attn", "value": [0, 0.5, 0.3, 0.7, 1]}
    # The base is named as base_model and as models[0]: both statements are kept.
    assert [(e.source, e.field) for e in base.evidence][1:] == [
        ("mergekit_config", "base_model"),
        ("mergekit_config", "models[0].model"),
    ]


def test_ties_merge_density_and_weight_gradient(tiny: TinyModels) -> None:
    parsed = _hub_upload(tiny, "ties")
    base, tuned = parsed.parents["org/base"], parsed.parents["org/tuned"]
    assert base.role == "base"
    assert (base.weight, base.density) == (None, None)
    assert (tuned.weight, tuned.density) == ([0.2, 0.8], 0.5)
    assert tuned.parameters == {
        "normalize": True,
        "int8_mask": True,
        "density": 0.5,
        "weight": [0.2, 0.8],
    }


def test_task_arithmetic_base_only_as_base_model(tiny: TinyModels) -> None:
    parsed = _hub_upload(tiny, "task_arithmetic")
    base, tuned = parsed.parents["org/base"], parsed.parents["org/tuned"]
    assert (base.role, base.weight, base.parameters) == ("base", None, {})
    assert (tuned.weight, tuned.parameters) == (0.6, {"lambda": 1.0, "weight": 0.6})
    assert [e.field for e in base.evidence if e.source == "mergekit_config"] == ["base_model"]


def test_slices_merge(tiny: TinyModels) -> None:
    parsed = _hub_upload(tiny, "slices")
    assert set(parsed.parents) == {"org/base", "org/tuned"}
    assert {link.merge_method for link in parsed.links} == {"passthrough"}
    base, tuned = parsed.parents["org/base"], parsed.parents["org/tuned"]
    assert base.evidence[-1].field == "slices[0].sources[0].model"
    assert tuned.evidence[-1].field == "slices[1].sources[0].model"
    assert tuned.parameters == {"scale": 1.0}


def test_card_block_alone_is_merge_evidence(tiny: TinyModels) -> None:
    parsed = _hub_upload(tiny, "ties", with_config_file=False)
    assert parsed.relation == "merge"
    assert parsed.relation_evidence.source == "card.mergekit_yaml"
    tuned = parsed.parents["org/tuned"]
    assert _sources(tuned) == ["card.base_model", "card.mergekit_yaml"]
    assert tuned.evidence[1].file == "README.md"
    assert (tuned.density, tuned.merge_method) == (0.5, "ties")


def test_local_merge_names_local_paths(tiny: TinyModels) -> None:
    folder = tiny.merges["ties"].folder
    parsed = Parsed(
        "me/ties",
        card=(folder / "README.md").read_text(),
        mergekit=(folder / "mergekit_config.yml").read_text(),
        config=(folder / "config.json").read_text(),
    )
    assert parsed.relation == "merge"
    assert set(parsed.parents) == {str(tiny.parent_a), str(tiny.parent_b)}
    assert {link.parent_kind for link in parsed.links} == {"local_path"}
    assert parsed.parents[str(tiny.parent_a)].role == "base"
    assert parsed.parents[str(tiny.parent_b)].density == 0.5
    assert (
        f"me/ties: mergekit_config.yml base_model names a local path '{tiny.parent_a}', "
        "not a Hub repo"
    ) in parsed.warnings


# -------------------------------------------------------------------- adapters by PEFT


def test_peft_adapter(hub_lora: Path) -> None:
    parsed = Parsed(
        "org/lora",
        card=(hub_lora / "README.md").read_text(),
        adapter=(hub_lora / "adapter_config.json").read_text(),
    )
    assert parsed.relation == "adapter"
    assert parsed.relation_evidence.source == "adapter_config"
    (link,) = parsed.links
    assert (link.parent, link.relation) == ("org/base", "adapter")
    assert [(e.source, e.file, e.field, e.value) for e in link.evidence] == [
        ("card.base_model", "README.md", "base_model", "org/base"),
        ("adapter_config", "adapter_config.json", "base_model_name_or_path", "org/base"),
    ]
    assert parsed.warnings == []


def test_peft_adapter_trained_from_a_local_folder(local_lora: Path) -> None:
    parsed = Parsed(
        "me/lora",
        card=(local_lora / "README.md").read_text(),
        adapter=(local_lora / "adapter_config.json").read_text(),
    )
    (link,) = parsed.links
    assert link.parent_kind == "local_path"
    assert link.parent == parsed.adapter.base_model_name_or_path
    assert _sources(link) == ["card.base_model", "adapter_config"]
    assert f"me/lora: base_model names a local path '{link.parent}', not a Hub repo" in (
        parsed.warnings
    )


def test_adapter_local_path_is_ignored_when_the_card_names_the_hub_parent(
    local_lora: Path,
) -> None:
    parsed = Parsed(
        "me/lora",
        card="---\nbase_model: org/base\nlibrary_name: peft\n---\n",
        adapter=(local_lora / "adapter_config.json").read_text(),
    )
    assert [link.parent for link in parsed.links] == ["org/base"]
    assert _sources(parsed.links[0]) == ["card.base_model", "adapter_config"]
    assert parsed.links[0].evidence[1].source == "adapter_config"  # the relation's evidence
    assert any("ignored, a Hub parent is declared" in w for w in parsed.warnings)


# ------------------------------------------------------------------ config._name_or_path


def _parents_with_name_or_path(name_or_path: str, base_models: list[str]) -> Parsed:
    parsed = Parsed.__new__(Parsed)
    card = CardMetadata(base_models=base_models)
    config = model_config_from_dict({"_name_or_path": name_or_path})
    relation, evidence = infer_relation(
        card=card, has_adapter_config=False, mergekit=None, config=config, has_gguf=False
    )
    parsed.links, parsed.warnings = declared_parents(
        "org/child",
        card=card,
        mergekit=None,
        adapter=None,
        config=config,
        relation=relation,
        relation_evidence=evidence,
    )
    parsed.parents = {link.parent: link for link in parsed.links}
    return parsed


def test_name_or_path_adds_evidence_to_a_declared_parent() -> None:
    parsed = _parents_with_name_or_path("org/base", ["org/base"])
    assert _sources(parsed.parents["org/base"]) == ["card.base_model", "config._name_or_path"]


def test_name_or_path_alone_is_a_parent() -> None:
    parsed = _parents_with_name_or_path("org/other", [])
    other = parsed.parents["org/other"]
    assert (other.relation, _sources(other)) == ("finetune", ["config._name_or_path"])
    assert other.evidence[0].file == "config.json"


def test_name_or_path_that_disagrees_with_the_card_is_a_warning() -> None:
    # A copy keeps its source's config.json: _name_or_path there names the source's own
    # parent (a quantized copy's grandparent). The card's base_model wins.
    parsed = _parents_with_name_or_path("org/other", ["org/base"])
    assert list(parsed.parents) == ["org/base"]
    assert parsed.warnings == [
        "org/child: config.json _name_or_path names 'org/other', not the declared parent "
        "'org/base'; not taken as a parent"
    ]


@pytest.mark.parametrize(
    "name_or_path",
    [
        "/data/ckpt",
        "./output",
        "output/ckpt/final",
        "org/child",
        "ORG/Child",
        "checkpoint-500",
        "bad name",
    ],
)
def test_name_or_path_ignored_silently(name_or_path: str) -> None:
    parsed = _parents_with_name_or_path(name_or_path, ["org/base"])
    assert list(parsed.parents) == ["org/base"]
    assert parsed.warnings == []


# --------------------------------------------------------------- hostile declarations


def _parents(card: dict, **kwargs: object) -> tuple[list[ParentLink], list[str]]:
    metadata = card_metadata_from_dict(card)
    relation, evidence = infer_relation(
        card=metadata,
        has_adapter_config=kwargs.get("adapter") is not None,
        mergekit=kwargs.get("mergekit"),  # type: ignore[arg-type]
        config=None,
        has_gguf=False,
    )
    return declared_parents(
        "org/child",
        card=metadata,
        mergekit=kwargs.get("mergekit"),  # type: ignore[arg-type]
        adapter=kwargs.get("adapter"),  # type: ignore[arg-type]
        config=None,
        relation=relation,
        relation_evidence=evidence,
    )


def test_local_path_and_invalid_references_become_flagged_parents() -> None:
    links, warnings = _parents({"base_model": ["/home/me/ckpt", "org/na me", "org/base"]})
    kinds = {link.parent: link.parent_kind for link in links}
    assert kinds == {"/home/me/ckpt": "local_path", "org/na me": "invalid", "org/base": "repo"}
    assert warnings[0] == "org/child: base_model names a local path '/home/me/ckpt', not a Hub repo"
    assert warnings[1].startswith("org/child: base_model names an invalid reference 'org/na me': ")
    assert links[0].evidence[0].field == "base_model[0]"


def test_a_model_naming_itself_is_dropped() -> None:
    links, warnings = _parents({"base_model": ["org/child", "Org/Child", "org/base"]})
    assert [link.parent for link in links] == ["org/base"]
    assert warnings == ["org/child names itself as its own parent"]


def test_pinned_revision_and_lora_from_mergekit() -> None:
    recipe = parse_mergekit_config(
        "merge_method: linear\nmodels:\n"
        "  - {model: org/a@v1.0, parameters: {weight: 0.5}}\n"
        "  - {model: org/b+org/b-lora, parameters: {weight: 0.5}}\n"
    )
    links, warnings = _parents({"base_model": ["Org/A", "org/b"]}, mergekit=recipe)
    by_parent = {link.parent: link for link in links}
    # "Org/A" and "org/a@v1.0" are one repo: the first spelling names the node.
    assert set(by_parent) == {"Org/A", "org/b"}
    assert (by_parent["Org/A"].revision, by_parent["org/b"].lora) == ("v1.0", "org/b-lora")
    assert _sources(by_parent["Org/A"]) == ["card.base_model", "mergekit_config"]
    assert by_parent["org/b"].evidence[1].value == "org/b+org/b-lora"
    assert warnings == []


def test_explicit_relation_that_files_contradict_is_warned() -> None:
    recipe = parse_mergekit_config(
        "merge_method: linear\nmodels: [{model: org/a}, {model: org/b}]\n"
    )
    links, warnings = _parents(
        {"base_model": ["org/a"], "base_model_relation": "finetune"}, mergekit=recipe
    )
    assert {link.parent: link.relation for link in links} == {"org/a": "merge", "org/b": "merge"}
    assert any("declares base_model_relation 'finetune'" in w for w in warnings)


def test_relation_evidence_is_attached_when_it_adds_something() -> None:
    links, _ = _parents({"base_model": "org/a", "tags": ["Merge"]})
    assert _sources(links[0]) == ["card.base_model", "card.tags"]
    links, _ = _parents({"base_model": "org/a"})
    assert _sources(links[0]) == ["card.base_model"]  # "default" adds nothing


def test_adapter_relation_from_adapter_config_only() -> None:
    links, _ = _parents({}, adapter=AdapterConfig(base_model_name_or_path="org/base"))
    assert [(link.parent, link.relation) for link in links] == [("org/base", "adapter")]


# ------------------------------------------------------------------------ infer_relation

MERGE = MergeRecipe(merge_method="linear", source_file="mergekit_config.yml")
QUANTIZED = ModelConfigSummary(quantization_config={"quant_method": "gptq"})


def _infer(
    card: CardMetadata | None = None,
    *,
    adapter: bool = False,
    mergekit: MergeRecipe | None = None,
    config: ModelConfigSummary | None = None,
    gguf: bool = False,
) -> tuple[str, str]:
    relation, evidence = infer_relation(
        card=card, has_adapter_config=adapter, mergekit=mergekit, config=config, has_gguf=gguf
    )
    return relation, evidence.source


def test_infer_relation_rules_in_order_of_precedence() -> None:
    everything = {"adapter": True, "mergekit": MERGE, "config": QUANTIZED, "gguf": True}
    explicit = CardMetadata(base_model_relation="quantized")
    assert _infer(explicit, **everything) == ("quantized", "card.base_model_relation")
    assert _infer(CardMetadata(), **everything) == ("adapter", "adapter_config")
    everything["adapter"] = False
    assert _infer(CardMetadata(), **everything) == ("merge", "mergekit_config")
    del everything["mergekit"]
    # A quantizer's config and files are facts about the weights: a quantized copy keeps its
    # source's "merge" tags and base models, and is still a quantized copy.
    two_bases = CardMetadata(base_models=["a/b", "c/d"], tags=["merge"])
    assert _infer(two_bases, **everything) == ("quantized", "config.quantization_config")
    assert _infer(two_bases) == ("merge", "card.base_model")
    merge_tag = CardMetadata(base_models=["a/b"], tags=["MERGE"])
    assert _infer(merge_tag, gguf=True) == ("quantized", "files.gguf")
    assert _infer(merge_tag) == ("merge", "card.tags")
    one_base = CardMetadata(base_models=["a/b"], tags=["mergekit-style"])
    assert _infer(one_base, **everything) == ("quantized", "config.quantization_config")
    empty_quantization = ModelConfigSummary(quantization_config={})
    assert _infer(one_base, config=empty_quantization, gguf=True) == ("quantized", "files.gguf")
    assert _infer(one_base, config=empty_quantization) == ("finetune", "default")
    assert _infer() == ("finetune", "default")


def test_card_block_recipe_is_named_as_such() -> None:
    recipe = MergeRecipe(merge_method="ties", source_file="README.md")
    relation, evidence = infer_relation(
        card=None, has_adapter_config=False, mergekit=recipe, config=None, has_gguf=False
    )
    assert (relation, evidence.source, evidence.file, evidence.value) == (
        "merge",
        "card.mergekit_yaml",
        "README.md",
        "ties",
    )


def test_quantization_evidence_names_the_method() -> None:
    _, evidence = infer_relation(
        card=None, has_adapter_config=False, mergekit=None, config=QUANTIZED, has_gguf=False
    )
    assert (evidence.file, evidence.field, evidence.value) == (
        "config.json",
        "quantization_config",
        "gptq",
    )


def test_unknown_explicit_relation_falls_back_to_inference() -> None:
    card = card_metadata_from_dict({"base_model": "org/a", "base_model_relation": "distilled"})
    relation, evidence = infer_relation(
        card=card, has_adapter_config=True, mergekit=None, config=None, has_gguf=False
    )
    assert (relation, evidence.source) == ("adapter", "adapter_config")
