"""Lineage read from real, published model repos (``tests/data/real/models/``, see SOURCES.md).

Each test names the fixture it reads and the convention it covers; the truth for every folder
is in EXPECTED.yaml, and the corpus-wide figures are those of benchmarks/real_cards.py.
"""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import pytest

from lineage.crawler import CrawlOptions, crawl
from lineage.exporters.flatten import edge_label_lines
from lineage.graph import lineage_graph
from lineage.records import ModelSnapshot, ParentLink
from lineage.report.context import build_context
from lineage.report.html import render_brief_html
from lineage.sources.hub import HubSource
from lineage.sources.local import LocalSource
from registry.database import Registry
from testkit.hub_server import FakeHub
from testkit.real_corpus import (
    TARGETS,
    copy_as_tree,
    evaluate,
    expected,
    folders,
    local_snapshot,
    repo_id_of,
)


def _read(folder: str) -> ModelSnapshot:
    return local_snapshot(folder, expected().get(folder))


def _parents(snapshot: ModelSnapshot) -> dict[str, ParentLink]:
    return {link.parent: link for link in snapshot.parents}


def _warned(snapshot: ModelSnapshot, *fragments: str) -> bool:
    return any(all(f in warning for f in fragments) for warning in snapshot.warnings)


# -- the whole corpus ------------------------------------------------------------------------


def test_corpus_figures_meet_the_targets() -> None:
    corpus = evaluate()
    assert len(corpus.scores) >= 60
    for name, target in TARGETS.items():
        assert corpus.figures[name] >= target, (name, corpus.figures[name])
    # A model read wrongly always comes with a warning that says what could not be read.
    assert corpus.silent == []


def test_every_folder_has_its_truth_and_its_source() -> None:
    truths = expected()
    sources = (Path(__file__).parent / "data" / "real" / "models" / "SOURCES.md").read_text()
    for folder in folders():
        assert folder in truths
        assert f"`{folder}`" in sources or folder in sources


# -- multi-document and multi-stage recipes ---------------------------------------------------


def test_mergekit_mega_stream_has_an_intermediate_node() -> None:
    snapshot = _read("brucethemoose__Yi-34B-200K-DARE-megamerge-v8")
    intermediate = "brucethemoose/Yi-34B-200K-DARE-megamerge-v8#./4kmerge-v2"
    assert [stage.repo_id for stage in snapshot.stages] == [intermediate]
    stage = snapshot.stages[0]
    assert stage.mergekit is not None and stage.mergekit.name == "4kmerge-v2"
    assert stage.source == "recipe" and len(stage.parents) >= 5
    link = _parents(snapshot)[intermediate]
    assert link.parent_kind == "intermediate" and link.relation == "merge"
    assert snapshot.mergekit is not None and snapshot.mergekit.name is None  # the final one


def test_two_configs_back_to_back_are_split_not_overwritten() -> None:
    snapshot = _read("SanjiWatsuki__neural-chat-7b-v3-3-wizardmath-dare-me")
    assert _warned(snapshot, "back to back")
    assert snapshot.mergekit is not None and snapshot.mergekit.merge_method == "task_arithmetic"
    (stage,) = snapshot.stages
    assert stage.mergekit is not None and stage.mergekit.merge_method == "dare_ties"
    assert {link.parent for link in stage.parents} == {
        "mistralai/Mistral-7B-v0.1",
        "WizardLM/WizardMath-7B-V1.1",
    }
    assert set(_parents(snapshot)) == {
        "mistralai/Mistral-7B-v0.1",
        "Intel/neural-chat-7b-v3-3",
        stage.repo_id,
    }


def test_final_recipe_shown_first_and_its_input_made_by_the_second() -> None:
    snapshot = _read("TheBigBlender__Orca2myth7.2")
    assert snapshot.mergekit is not None and snapshot.mergekit.merge_method == "passthrough"
    (stage,) = snapshot.stages
    assert stage.repo_id == "TheBigBlender/Orca2myth7.2#./output/Orca2flat"
    assert {link.parent for link in stage.parents} == {
        "TheBloke/Llama-2-13B-fp16",
        "microsoft/Orca-2-13b",
    }
    # Not flattened: the intermediate's parents are not the model's direct parents.
    assert set(_parents(snapshot)) == {stage.repo_id, "PygmalionAI/mythalion-13b"}


def test_stages_named_by_headings_make_base_models_ancestors() -> None:
    snapshot = _read("Casual-Autopsy__L3-Umbral-Mind-RP-v3.0-8B")
    truth = expected()["Casual-Autopsy__L3-Umbral-Mind-RP-v3.0-8B"]
    assert set(_parents(snapshot)) == {entry["id"] for entry in truth["parents"]}
    assert _warned(snapshot, "input of an earlier stage", "an ancestor, not a direct parent")


def test_a_block_that_does_not_parse_keeps_the_others() -> None:
    snapshot = _read("KoboldAI__LLaMA2-13B-Estopia")
    assert _warned(snapshot, "README.md", "line 40", "mapping values are not allowed")
    assert snapshot.mergekit is not None and snapshot.mergekit.merge_method == "dare_ties"
    assert {stage.repo_id.rsplit("#", 1)[1] for stage in snapshot.stages} == {
        "./EstopiaV9",
        "./EstopiaV13",
    }


# -- recipes outside a fence, mangled, or mergekit-moe ----------------------------------------


def test_plain_markdown_recipe_is_weaker_evidence() -> None:
    snapshot = _read("Weyaxi__MetaMath-NeuralHermes-2.5-Mistral-7B-Linear")
    assert snapshot.mergekit is not None and not snapshot.mergekit.fenced
    for link in snapshot.parents:
        assert link.confidence is not None and link.confidence < 1
        assert "not in a code block" in (link.evidence[0].detail or "")
        assert "outside a code block" in " ".join(edge_label_lines(_edge_attrs(link)))


def test_mangled_recipe_is_read_line_by_line_with_its_error() -> None:
    snapshot = _read("athirdpath__Iambe-20b-DARE")
    assert _warned(snapshot, "read line by line", "dare_ties")
    assert _warned(snapshot, "mapping values are not allowed")
    noromaid = _parents(snapshot)["NeverSleep/Noromaid-20b-v0.1.1"]
    assert (noromaid.weight, noromaid.density) == (0.41, 0.5)
    assert _parents(snapshot)["athirdpath/BigLlama-20b"].role == "base"


def test_mergekit_moe_has_one_edge_per_expert_and_the_base() -> None:
    snapshot = _read("Weyaxi__Bagel-Hermes-2x34b")
    assert snapshot.relation == "merge"
    assert snapshot.mergekit is not None and snapshot.mergekit.merge_method == "moe"
    assert snapshot.mergekit.options["gate_mode"] in ("hidden", "cheap_embed", "random")
    roles = {link.parent: link.role for link in snapshot.parents}
    assert roles == {
        "./nontoxic-bagel-34b-v0.2": "base",
        "./bagel-dpo-34b-v0.2": "expert",
        "./Nous-Hermes-2-Yi-34B": "expert",
    }


def test_per_filter_and_gradient_parameters_are_kept_as_declared() -> None:
    snapshot = _read("mlabonne__NeuralPipe-7B-slerp")
    truth = expected()["mlabonne__NeuralPipe-7B-slerp"]["parents"][0]["parameters"]["t"]
    for link in snapshot.parents:
        assert link.parameters["t"] == truth
        assert link.t == truth


# -- local paths and folder names ---------------------------------------------------------------


def test_one_folder_written_two_ways_is_one_parent() -> None:
    snapshot = _read("brucethemoose__Capybara-Tess-Yi-34B-200K")
    base = _parents(snapshot)["/home/alpha/Storage/Models/Raw/larryvrh_Yi-34B-200K-Llamafied"]
    assert base.parent_kind == "local_path" and base.role == "base"
    assert base.candidate == "larryvrh/Yi-34B-200K-Llamafied"
    assert len(snapshot.parents) == 3
    assert all(link.parent_kind == "local_path" for link in snapshot.parents)


def test_windows_paths_and_hub_cache_snapshots() -> None:
    snapshot = _read("adriansterr__absa-german-dare_ties_055_045_1_05")
    cached = next(link for link in snapshot.parents if "models--" in link.parent)
    assert cached.parent.startswith("d:/Huggingface/hub/models--VAGOsolutions--")
    assert cached.candidate == "VAGOsolutions/Llama-3.1-SauerkrautLM-8b-Instruct"
    candidate = next(e for e in cached.evidence if e.source == "reference.candidate")
    assert candidate.value.endswith("@221e5f92f9dc5fedaf4556b1be6b20642638643c")
    assert not candidate.declared and cached.confidence == 0.9
    nemo = _read("MarinaraSpaghetti__NemoMix-Unleashed-12B")
    assert all(link.parent.startswith("e:/mergekit/") for link in nemo.parents)
    assert _parents(nemo)["e:/mergekit/Sao10K_MN-12B-Lyra-v1"].candidate == "Sao10K/MN-12B-Lyra-v1"


def test_org_name_folders_carry_a_candidate_never_a_repo_edge() -> None:
    snapshot = _read("sophosympatheia__Aurora-Nights-70B-v1.0")
    links = _parents(snapshot)
    assert all(link.parent_kind == "local_path" for link in snapshot.parents)
    assert links["./NousResearch_Llama-2-70b-hf"].candidate == "NousResearch/Llama-2-70b-hf"
    assert links["./allenai_tulu-2-dpo-70b"].candidate == "allenai/tulu-2-dpo-70b"


def test_local_folder_named_like_a_declared_hub_parent_is_that_parent() -> None:
    snapshot = _read("sophosympatheia__Midnight-Miqu-70B-v1.5")
    assert {"sophosympatheia/Midnight-Miqu-70B-v1.0", "migtissera/Tess-70B-v1.6"} <= set(
        _parents(snapshot)
    )
    assert not any("Tess-70B-v1.6" in link.parent for link in snapshot.parents[2:])
    assert _warned(snapshot, "is read as the declared parent", "migtissera/Tess-70B-v1.6")


# -- quantized copies ---------------------------------------------------------------------------


def test_gptq_copy_names_its_source_not_the_source_config_grandparent() -> None:
    genz = _read("TheBloke__Genz-70b-GPTQ")
    assert genz.relation == "quantized" and list(_parents(genz)) == ["budecosystem/genz-70b"]
    coder = _read("TheBloke__WizardCoder-15B-1.0-GPTQ")
    assert coder.relation == "quantized"
    assert list(_parents(coder)) == ["WizardLM/WizardCoder-15B-V1.0"]
    assert _warned(coder, "_name_or_path names 'bigcode/starcoder'", "not taken as a parent")


@pytest.mark.parametrize(
    ("folder", "source"),
    [
        ("mradermacher__MN-12B-Mag-Mell-R1-GGUF", "card.quantized_by"),  # keeps merge tags
        ("TheBloke__Mistral-7B-Instruct-v0.1-AWQ", "card.quantized_by"),
        ("QuantFactory__Mistral-7B-OpenOrca-GGUF", "repo.name"),
        ("turboderp__Mixtral-8x7B-instruct-exl2", "repo.name"),
    ],
)
def test_quantized_copies_told_by_card_or_name(folder: str, source: str) -> None:
    snapshot = _read(folder)
    assert snapshot.relation == "quantized"
    assert source in {e.source for link in snapshot.parents for e in link.evidence}


def test_gguf_copy_with_its_source_recipe_is_not_a_merge() -> None:
    snapshot = _read("Epiculous__Violet_Twilight-v0.2-GGUF")
    assert snapshot.mergekit is None and snapshot.stages == []
    assert _warned(snapshot, "quantized copy", "the recipe is its source model's")


def test_bitsandbytes_fine_tunes_are_fine_tunes() -> None:
    for folder in (
        "Irfanuruchi__Llama-2-13B-Computer-Engineering",
        "Irfanuruchi__Llama-3.1-8B-Computer-Networks-LLM",
    ):
        snapshot = _read(folder)
        assert snapshot.config is not None and snapshot.config.quantization_config
        assert snapshot.relation == "finetune", folder


# -- adapters and prose ------------------------------------------------------------------------


def test_library_name_peft_without_adapter_config_is_a_weaker_adapter() -> None:
    snapshot = _read("Undi95__toxicqa-Llama2-13B")
    assert snapshot.relation == "adapter"
    link = _parents(snapshot)["NousResearch/Llama-2-13b-hf"]
    assert "card.library_name" in {e.source for e in link.evidence}
    assert _warned(snapshot, "library_name: peft", "no adapter_config.json")


def test_parent_named_only_in_prose_is_told_apart() -> None:
    snapshot = _read("androlike__astramix_l2_7b_gguf")
    (link,) = snapshot.parents
    assert (link.parent, link.relation, link.confidence) == (
        "androlike/astramix_l2_7b",
        "quantized",
        0.5,
    )
    assert link.prose_only
    assert "stated only in the card's prose, confidence 0.50" in edge_label_lines(_edge_attrs(link))


def test_prose_never_outranks_the_front_matter() -> None:
    snapshot = _read("QuantFactory__Arch-Agent-7B-GGUF")
    assert "katanemo/Arch-Agent-7B" not in _parents(snapshot)
    assert _warned(snapshot, "katanemo/Arch-Agent-7B", "base_model is kept")


def test_trainer_card_prose_confirms_nothing_and_adds_no_parent() -> None:
    snapshot = _read("HuggingFaceH4__zephyr-7b-beta")
    assert all(link.confidence is None for link in snapshot.parents)
    assert all("card_prose" not in {e.source for e in link.evidence} for link in snapshot.parents)


# -- Hub mode, the registry and the graph ---------------------------------------------------


def test_hub_mode_reads_what_local_mode_reads(tmp_path: Path) -> None:
    truths = expected()
    ids = copy_as_tree(folders(), tmp_path / "tree", truths)
    local = LocalSource(tmp_path / "tree")
    with FakeHub() as hub:
        hub.add_local_tree(tmp_path / "tree")
        source = HubSource(
            endpoint=hub.endpoint, token=False, cache_dir=tmp_path / "cache", offline=False
        )
        for folder, repo_id in ids.items():
            remote = source.fetch(repo_id, None, known={})
            here = local.fetch(repo_id, None, known={})
            assert _lineage(remote) == _lineage(here), folder
            assert remote.relation == here.relation, folder


def test_intermediate_stages_are_registry_nodes_and_survive_a_recrawl(tmp_path: Path) -> None:
    folder = "TheBigBlender__Orca2myth7.2"
    ids = copy_as_tree([folder], tmp_path / "tree", expected())
    registry = Registry.open(f"sqlite:///{tmp_path / 'lineage.db'}")
    source = LocalSource(tmp_path / "tree")
    options = CrawlOptions(fingerprint=False)
    first = crawl(registry, source, [ids[folder]], options)
    again = crawl(registry, source, [ids[folder]], options)
    assert again.unchanged == 1
    stage = "TheBigBlender/Orca2myth7.2#./output/Orca2flat"
    for report in (first, again):
        assert {"TheBloke/Llama-2-13B-fp16", "microsoft/Orca-2-13b"} <= set(report.nodes)
    with registry.session() as session:
        graph: nx.DiGraph = lineage_graph(session, ids[folder])
    assert graph.has_edge(stage, ids[folder])
    assert graph.has_edge("microsoft/Orca-2-13b", stage)
    assert graph.nodes[stage]["source"] == "recipe"
    assert not graph.has_edge("microsoft/Orca-2-13b", ids[folder])


# -- helpers ---------------------------------------------------------------------------------


def _lineage(snapshot: ModelSnapshot) -> list[tuple[str, str, str | None, str | None]]:
    parents = [(p.parent, p.parent_kind, p.relation, p.merge_method) for p in snapshot.parents]
    stages = [(s.repo_id, "stage", s.relation, None) for s in snapshot.stages]
    return sorted(parents + stages)


def _edge_attrs(link: ParentLink) -> dict:
    return {
        "relation": link.relation,
        "declared": link.declared,
        "confidence": link.confidence,
        "merge_method": link.merge_method,
        "evidence": [e.to_dict() for e in link.evidence],
    }


def test_repo_id_of_falls_back_to_the_folder_name() -> None:
    assert repo_id_of("org__name") == "org/name"


def test_output_slice_parameters_override_the_global_ones() -> None:
    # mergekit's precedence: a source's own parameters, then its output slice's, then global.
    snapshot = _read("adriansterr__linear_layer_specific")
    assert snapshot.mergekit is not None and snapshot.mergekit.parameters == {"weight": 0.8}
    assert len(snapshot.parents) == 2
    for link in snapshot.parents:
        assert link.parameters == {"weight": [0.9, 0.1]}
        assert link.weight == [0.9, 0.1]


def test_the_brief_tells_a_prose_only_parent_apart(tmp_path: Path) -> None:
    folder = "androlike__astramix_l2_7b_gguf"
    ids = copy_as_tree([folder], tmp_path / "tree", expected())
    registry = Registry.open(f"sqlite:///{tmp_path / 'lineage.db'}")
    crawl(registry, LocalSource(tmp_path / "tree"), [ids[folder]], CrawlOptions(depth=0))
    html = render_brief_html(build_context(registry, ids[folder]))
    assert "stated only in the card&#39;s prose, confidence 0.50" in html or (
        "stated only in the card's prose, confidence 0.50" in html
    )
