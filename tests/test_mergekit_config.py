"""mergekit configurations, checked against what mergekit itself writes and accepts."""

from __future__ import annotations

import pytest
import yaml
from mergekit.common import ModelReference as MergekitReference
from mergekit.config import MergeConfiguration as MergekitConfiguration

from lineage.cards import parse_model_card
from lineage.errors import FileTooLargeError, MalformedFileError
from lineage.mergekit_config import (
    MAX_MERGEKIT_CONFIG_BYTES,
    merge_parameter,
    parse_mergekit_config,
    recipe_from_card,
    reference_text,
)
from tests.support.tiny_models import MERGE_CONFIGS, TinyModels, build_merges


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyModels:
    return build_merges(tmp_path_factory.mktemp("recipe-merges"))


def _mergekit_view(text: str) -> MergekitConfiguration:
    return MergekitConfiguration.model_validate(yaml.safe_load(text))


@pytest.mark.parametrize("method", list(MERGE_CONFIGS))
def test_config_file_mergekit_wrote(tiny: TinyModels, method: str) -> None:
    text = (tiny.merges[method].folder / "mergekit_config.yml").read_text()
    recipe = parse_mergekit_config(text, repo_id="me/merge")
    theirs = _mergekit_view(text)

    assert recipe.merge_method == theirs.merge_method
    assert recipe.base_model == (str(theirs.base_model) if theirs.base_model else None)
    assert recipe.dtype == theirs.dtype == "float32"
    assert recipe.source_file == "mergekit_config.yml"
    assert recipe.raw == yaml.safe_load(text)
    assert recipe.parameters == yaml.safe_load(text).get("parameters", {})
    referenced = {str(reference) for reference in theirs.referenced_models()}
    assert {entry.reference for entry in recipe.models} | {recipe.base_model or ""} >= referenced
    if theirs.models:
        assert [entry.reference for entry in recipe.models] == [str(m.model) for m in theirs.models]
        assert recipe.slices is None
    else:
        assert recipe.slices == yaml.safe_load(text)["slices"]


def test_slices_collect_distinct_sources_in_order(tiny: TinyModels) -> None:
    recipe = parse_mergekit_config(tiny.merges["slices"].hub_config)
    assert [entry.reference for entry in recipe.models] == ["org/base", "org/tuned"]
    # org/base appears twice: the parameters of its first occurrence are kept.
    assert recipe.models[0].parameters == {}
    assert recipe.models[1].parameters == {"scale": 1.0}
    assert recipe.merge_method == "passthrough"


def test_parameters_are_kept_as_declared(tiny: TinyModels) -> None:
    ties = parse_mergekit_config(tiny.merges["ties"].hub_config)
    tuned = ties.models[1]
    assert tuned.parameters == {"density": 0.5, "weight": [0.2, 0.8]}
    assert merge_parameter(tuned.parameters, ties.parameters, "weight") == [0.2, 0.8]
    assert merge_parameter(tuned.parameters, ties.parameters, "density") == 0.5
    assert merge_parameter(ties.models[0].parameters, ties.parameters, "weight") is None
    assert ties.parameters == {"normalize": True, "int8_mask": True}

    slerp = parse_mergekit_config(tiny.merges["slerp"].hub_config)
    t = merge_parameter(slerp.models[0].parameters, slerp.parameters, "t")
    assert t == [
        {"filter": "self_attn", "value": [0, 0.5, 0.3, 0.7, 1]},
        {"filter": "mlp", "value": [1, 0.5, 0.7, 0.3, 0]},
        {"value": 0.5},
    ]


def test_model_level_parameters_win_over_global() -> None:
    assert merge_parameter({"weight": 0.2}, {"weight": 0.9}, "weight") == 0.2
    assert merge_parameter({}, {"weight": 0.9}, "weight") == 0.9
    assert merge_parameter(None, None, "weight") is None
    assert merge_parameter({"weight": None}, {"weight": 0.9}, "weight") == 0.9


def test_recipe_from_a_mergekit_card(tiny: TinyModels) -> None:
    card = parse_model_card(tiny.merges["task_arithmetic"].hub_card)
    recipe = recipe_from_card(card, repo_id="org/ta")
    assert recipe is not None
    assert recipe.source_file == "README.md"
    assert recipe.base_model == "org/base"
    assert [(e.reference, e.parameters) for e in recipe.models] == [("org/tuned", {"weight": 0.6})]
    assert recipe_from_card(parse_model_card("# no config")) is None


PINNED_AND_LORA = """\
merge_method: task_arithmetic
base_model:
  model:
    path: org/base
    revision: v1.0
models:
  - model: org/tuned@4f1c0de5a9b7e3d2c1f0a9b8c7d6e5f4a3b2c1d0
    parameters: {weight: 0.5}
  - model: org/other+org/lora
    parameters: {weight: 0.5}
  - model:
      model: {path: org/third}
      lora: {path: org/third-lora, revision: main}
      override_architecture: LlamaForCausalLM
tokenizer_source:
  model: {path: org/base}
"""


def test_references_match_mergekits_string_form() -> None:
    recipe = parse_mergekit_config(PINNED_AND_LORA)
    theirs = _mergekit_view(PINNED_AND_LORA)
    assert recipe.base_model == str(theirs.base_model) == "org/base@v1.0"
    assert [entry.reference for entry in recipe.models] == [str(m.model) for m in theirs.models]
    assert recipe.models[2].reference == "org/third+org/third-lora@main"
    assert recipe.tokenizer_source == "org/base"


@pytest.mark.parametrize(
    "value", ["org/a", "org/a@v1", "org/a+org/lora", "./local@rev+../lora@x", "/abs/path"]
)
def test_reference_text_round_trips_mergekit(value: str) -> None:
    reference = MergekitReference.model_validate(value)
    assert reference_text(value) == str(reference)
    assert reference_text(reference.model_dump(mode="json", exclude_none=True)) == str(reference)


def test_unknown_keys_are_ignored_but_kept_in_raw() -> None:
    recipe = parse_mergekit_config(
        "merge_method: linear\nmodels: [{model: org/a}]\nname: my-merge\nout_dtype: bfloat16\n"
    )
    assert recipe.raw["name"] == "my-merge"
    assert recipe.tokenizer_source is None


def test_tokenizer_source_keywords() -> None:
    recipe = parse_mergekit_config(
        "merge_method: linear\nmodels: [{model: a}]\ntokenizer_source: union\n"
    )
    assert recipe.tokenizer_source == "union"


def test_modules_collect_models() -> None:
    text = """\
merge_method: linear
modules:
  text:
    models:
      - model: org/a
        parameters: {weight: 0.5}
      - model: org/b
        parameters: {weight: 0.5}
"""
    _mergekit_view(text)  # mergekit accepts it too
    recipe = parse_mergekit_config(text)
    assert [(e.reference, e.parameters) for e in recipe.models] == [
        ("org/a", {"weight": 0.5}),
        ("org/b", {"weight": 0.5}),
    ]


INVALID_CONFIGS = {
    "no merge_method": "models: [{model: org/a}]\n",
    "models and slices": (
        "merge_method: linear\nmodels: [{model: org/a}]\n"
        "slices: [{sources: [{model: org/a, layer_range: [0, 1]}]}]\n"
    ),
    "no inputs": "merge_method: linear\nbase_model: org/a\n",
    "model not a reference": "merge_method: linear\nmodels: [{model: 3}]\n",
    "model missing": "merge_method: linear\nmodels: [{parameters: {weight: 1}}]\n",
    "layer_range of three": (
        "merge_method: passthrough\nslices: [{sources: [{model: org/a, layer_range: [0, 1, 2]}]}]\n"
    ),
    "parameter is a mapping": (
        "merge_method: linear\nmodels: [{model: org/a, parameters: {weight: {a: 1}}}]\n"
    ),
    "merge_method a list": "merge_method: [linear]\nmodels: [{model: org/a}]\n",
    "tokenizer and tokenizer_source": (
        "merge_method: linear\nmodels: [{model: a}]\n"
        "tokenizer_source: base\ntokenizer: {source: base}\n"
    ),
}


@pytest.mark.parametrize("name", list(INVALID_CONFIGS))
def test_invalid_configs_are_refused_like_mergekit(name: str) -> None:
    text = INVALID_CONFIGS[name]
    with pytest.raises(Exception):  # noqa: B017 - mergekit raises pydantic or RuntimeError
        _mergekit_view(text)
    with pytest.raises(MalformedFileError) as caught:
        parse_mergekit_config(text, repo_id="org/m")
    message = str(caught.value)
    assert message.startswith("org/m: mergekit_config.yml: invalid mergekit config:")
    assert "\n" not in message


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("- a\n- b\n", "not a mapping"),
        ("", "not a mapping"),
        ("merge_method: [linear\n", "malformed mergekit config"),
        ("merge_method: !!python/name:os.system\n", "malformed mergekit config"),
        ("a: &a [*a]\n", "contains it"),
    ],
)
def test_unparseable_configs(text: str, match: str) -> None:
    with pytest.raises(MalformedFileError, match=match):
        parse_mergekit_config(text, repo_id="org/m")


def test_config_over_the_size_bound() -> None:
    text = "merge_method: linear\nmodels: [{model: org/a}]\n#" + "x" * MAX_MERGEKIT_CONFIG_BYTES
    with pytest.raises(FileTooLargeError, match=r"org/m: mergekit_config\.yml: file is"):
        parse_mergekit_config(text, repo_id="org/m")
