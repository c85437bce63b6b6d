"""Model cards: front matter, cardData, model-index, and mergekit's YAML block."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from huggingface_hub import EvalResult, ModelCardData

from lineage.cards import MAX_CARD_BYTES, card_metadata_from_dict, parse_model_card
from lineage.errors import FileTooLargeError, MalformedFileError
from lineage.mergekit_config import parse_mergekit_config
from tests.support.tiny_models import HUB_IDS, TinyModels, build_merges, save_lora_adapter


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyModels:
    return build_merges(tmp_path_factory.mktemp("card-merges"))


@pytest.mark.parametrize("method", ["linear", "slerp", "ties", "task_arithmetic", "slices"])
def test_mergekit_hub_card(tiny: TinyModels, method: str) -> None:
    merge = tiny.merges[method]
    card = parse_model_card(merge.hub_card, repo_id=f"org/{method}")
    assert sorted(card.base_models) == sorted(HUB_IDS.values())
    assert card.tags == ["mergekit", "merge"]
    assert card.library_name == "transformers"
    assert card.mergekit_yaml is not None
    assert yaml.safe_load(card.mergekit_yaml) == yaml.safe_load(merge.hub_config)
    assert parse_mergekit_config(card.mergekit_yaml).merge_method == (
        "passthrough" if method == "slices" else method
    )


def test_card_mergekit_wrote_for_a_local_merge(tiny: TinyModels) -> None:
    merge = tiny.merges["ties"]
    card = parse_model_card((merge.folder / "README.md").read_text(), repo_id="me/ties")
    # mergekit lists only Hub repos in base_model; the local parents live in the YAML block.
    assert card.base_models == []
    assert card.mergekit_yaml is not None
    assert str(tiny.parent_b) in card.mergekit_yaml
    assert card.mergekit_yaml.strip() == merge.local_config.strip()


def test_card_peft_writes(tiny: TinyModels, tmp_path: Path) -> None:
    folder = save_lora_adapter(tiny.parent_a, tmp_path / "lora", base_repo_id="org/base")
    card = parse_model_card((folder / "README.md").read_text(), repo_id="org/lora")
    assert card.base_models == ["org/base"]
    assert card.library_name == "peft"
    assert card.pipeline_tag == "text-generation"
    assert "base_model:adapter:org/base" in card.tags
    assert "lora" in card.tags
    assert card.mergekit_yaml is None


def test_model_index_written_by_huggingface_hub() -> None:
    results = [
        EvalResult(
            task_type="text-generation",
            task_name="Text Generation",
            dataset_type="cais/mmlu",
            dataset_name="MMLU",
            dataset_config="all",
            dataset_split="test",
            metric_type="acc",
            metric_name="accuracy",
            metric_value=0.625,
            verified=False,
            source_name="Open LLM Leaderboard",
            source_url="https://example.org/leaderboard",
        ),
        EvalResult(
            task_type="text-generation",
            dataset_type="allenai/ai2_arc",
            dataset_name="ARC",
            metric_type="acc_norm",
            metric_value=41,
        ),
    ]
    data = ModelCardData(
        model_name="org/child", base_model="org/base", license="apache-2.0", eval_results=results
    )
    card = parse_model_card(f"---\n{data.to_yaml()}\n---\n# Child\n")
    first, second = card.evaluations
    assert (first.task_type, first.task_name, first.dataset_type, first.dataset_name) == (
        "text-generation",
        "Text Generation",
        "cais/mmlu",
        "MMLU",
    )
    assert (first.dataset_config, first.dataset_split) == ("all", "test")
    assert (first.metric_type, first.metric_name, first.metric_value) == ("acc", "accuracy", 0.625)
    assert (first.verified, first.source_name) == (False, "Open LLM Leaderboard")
    assert first.source_url == "https://example.org/leaderboard"
    assert (second.dataset_name, second.metric_type, second.metric_value) == (
        "ARC",
        "acc_norm",
        41.0,
    )
    assert second.verified is None and second.source_name is None
    assert card.license == "apache-2.0"
    assert card.base_models == ["org/base"]


def test_card_data_from_the_hub_matches_the_front_matter() -> None:
    text = """---
base_model:
- org/a
- org/b
base_model_relation: merge
license: other
license_name: llama3
datasets: org/data
pipeline_tag: text-generation
tags: [merge, safety]
---
body
"""
    from_card = parse_model_card(text)
    card_data = yaml.safe_load(text.split("---")[1])
    from_hub = card_metadata_from_dict(card_data)
    assert from_card == from_hub
    assert from_hub.base_models == ["org/a", "org/b"]
    assert from_hub.base_model_relation == "merge"
    assert from_hub.license == "llama3"
    assert from_hub.datasets == ["org/data"]
    assert from_hub.front_matter == card_data


def test_base_model_keeps_order_and_drops_non_strings() -> None:
    card = card_metadata_from_dict(
        {"base_model": ["org/z", 3, None, {"x": 1}, ["nested"], "  org/a  ", "", "org/m"]}
    )
    assert card.base_models == ["org/z", "org/a", "org/m"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("adapter", "adapter"),
        ("merge", "merge"),
        ("quantized", "quantized"),
        ("finetune", "finetune"),
        (" Merge ", "merge"),
        ("distillation", None),
        ("", None),
        (["merge"], None),
        (1, None),
        (None, None),
    ],
)
def test_base_model_relation_only_known_values(value: object, expected: str | None) -> None:
    card = card_metadata_from_dict({"base_model": "org/a", "base_model_relation": value})
    assert card.base_model_relation == expected
    assert card.front_matter["base_model_relation"] == value


@pytest.mark.parametrize(
    ("data", "license_id"),
    [
        ({"license": "mit"}, "mit"),
        ({"license": "other", "license_name": "llama3"}, "llama3"),
        ({"license_name": "custom"}, "custom"),
        ({"license": "other"}, "other"),
        ({"license": ["apache-2.0", "mit"]}, "apache-2.0"),
        ({"license": 3}, None),
    ],
)
def test_license(data: dict, license_id: str | None) -> None:
    assert card_metadata_from_dict(data).license == license_id


def test_malformed_model_index_entries_are_skipped() -> None:
    model_index = [
        "not a mapping",
        {"name": "x", "results": "not a list"},
        {
            "name": "x",
            "results": [
                7,
                {"metrics": [{"type": "acc", "value": True}, "junk", {"value": "73.2 %"}]},
                {
                    "task": "not a mapping",
                    "dataset": None,
                    "metrics": [{"type": "f1", "value": [1]}],
                },
                {"task": {"type": "qa"}, "metrics": None},
            ],
        },
    ]
    evaluations = card_metadata_from_dict({"model-index": model_index}).evaluations
    assert [(e.metric_type, e.metric_value, e.task_type) for e in evaluations] == [
        ("acc", None, None),
        (None, "73.2 %", None),
        ("f1", None, None),
    ]


def test_tags_and_datasets_tolerate_odd_shapes() -> None:
    card = card_metadata_from_dict({"tags": "merge", "datasets": ["a", 1, "b"], "library_name": 5})
    assert card.tags == ["merge"]
    assert card.datasets == ["a", "b"]
    assert card.library_name is None


def test_card_without_front_matter_is_empty_metadata() -> None:
    card = parse_model_card("# Just a title\n\nSome text.\n")
    assert card.base_models == [] and card.front_matter == {} and card.mergekit_yaml is None


def test_empty_front_matter_is_empty_metadata() -> None:
    assert parse_model_card("---\n\n---\n# x\n").front_matter == {}


def test_front_matter_with_crlf_and_bom() -> None:
    card = parse_model_card("\ufeff---\r\nbase_model: org/a\r\n---\r\n# x\r\n")
    assert card.base_models == ["org/a"]


def test_malformed_yaml_names_repo_file_and_line() -> None:
    with pytest.raises(MalformedFileError) as caught:
        parse_model_card("---\nbase_model: org/a\ntags: [merge\n---\n", repo_id="org/bad")
    message = str(caught.value)
    assert message.startswith("org/bad: README.md: malformed YAML front matter:")
    assert "line 3" in message
    assert "\n" not in message


@pytest.mark.parametrize("front_matter", ["- a\n- b", "just a string", "42"])
def test_front_matter_that_is_not_a_mapping(front_matter: str) -> None:
    with pytest.raises(MalformedFileError, match="not a mapping"):
        parse_model_card(f"---\n{front_matter}\n---\n", repo_id="org/x")


def test_yaml_python_tags_are_refused() -> None:
    with pytest.raises(MalformedFileError, match="malformed YAML"):
        parse_model_card("---\nx: !!python/object/apply:os.system ['echo hi']\n---\n")


def test_alias_bomb_is_refused() -> None:
    bomb = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 9):
        bomb.append(
            f"{chr(97 + level)}: &{chr(97 + level)} "
            + "["
            + ", ".join([f"*{chr(96 + level)}"] * 10)
            + "]"
        )
    with pytest.raises(MalformedFileError, match="expand to more than"):
        parse_model_card("---\n" + "\n".join(bomb) + "\n---\n")


def test_modest_aliases_are_fine() -> None:
    card = parse_model_card("---\nbase: &b org/a\nbase_model: [*b]\n---\n")
    assert card.base_models == ["org/a"]


def test_recursive_alias_is_refused() -> None:
    with pytest.raises(MalformedFileError, match="contains it"):
        parse_model_card("---\nloop: &x [1, *x]\n---\n")


def test_deep_nesting_is_refused() -> None:
    with pytest.raises(MalformedFileError, match="nested too deeply"):
        parse_model_card("---\nx: " + "[" * 50_000 + "\n---\n")


def test_card_over_the_size_bound() -> None:
    text = "---\nbase_model: org/a\n---\n" + "x" * MAX_CARD_BYTES
    with pytest.raises(FileTooLargeError) as caught:
        parse_model_card(text, repo_id="org/huge")
    assert str(caught.value).startswith("org/huge: README.md: file is")
    with pytest.raises(FileTooLargeError):
        parse_model_card(text.encode())
    # Multi-byte characters count as bytes, not characters.
    with pytest.raises(FileTooLargeError):
        parse_model_card("é" * (MAX_CARD_BYTES // 2 + 1))


def test_card_that_is_not_utf8() -> None:
    with pytest.raises(MalformedFileError, match="not UTF-8"):
        parse_model_card(b"---\nbase_model: org/a\n---\n\xff\xfe")


# ----------------------------------------------------------------------- mergekit YAML block

MERGE_BLOCK = "merge_method: linear\nmodels:\n  - model: org/a\n  - model: org/b\n"


def test_yaml_block_in_the_configuration_section_wins() -> None:
    body = f"""# Model
```yaml
merge_method: ties
models: [{{model: org/early}}]
```
## Training configuration
```yaml
learning_rate: 0.0001
```
### Configuration

The following YAML configuration was used to produce this model:

```yaml
{MERGE_BLOCK}```
"""
    assert card_metadata_from_dict({}, body=body).mergekit_yaml == MERGE_BLOCK


def test_fallback_to_first_block_with_merge_method() -> None:
    body = f"""# Model
```python
merge_method = "not yaml"
```
```yaml
learning_rate: 0.0001
```
~~~yml
{MERGE_BLOCK}~~~
```yaml
merge_method: slerp
```
"""
    assert card_metadata_from_dict({}, body=body).mergekit_yaml == MERGE_BLOCK


def test_unlabelled_block_after_the_mergekit_sentence() -> None:
    sentence = "The following YAML configuration was used to produce this model:"
    body = f"{sentence}\n\n```\n{MERGE_BLOCK}```\n"
    assert card_metadata_from_dict({}, body=body).mergekit_yaml == MERGE_BLOCK


def test_configuration_heading_inside_a_code_block_is_not_a_heading() -> None:
    body = f"""```text
## Configuration
```
```yaml
merge_method: early
```
## Configuration
```yaml
{MERGE_BLOCK}```
"""
    assert card_metadata_from_dict({}, body=body).mergekit_yaml == MERGE_BLOCK


def test_unclosed_fence_and_no_block() -> None:
    assert card_metadata_from_dict({}, body="```yaml\nmerge_method: x\n").mergekit_yaml is None
    assert card_metadata_from_dict({}, body="no code here").mergekit_yaml is None


def test_many_unclosed_fences_stay_fast() -> None:
    body = "```yaml\n" * 200_000
    assert card_metadata_from_dict({}, body=body).mergekit_yaml is None


def test_front_matter_values_stay_json_compatible() -> None:
    card = parse_model_card(
        "---\ndate: 2024-01-02\nwhen: !!timestamp 2024-99-99\nkinds: !!set {a, b}\n---\n"
    )
    assert card.front_matter == {"date": "2024-01-02", "when": "2024-99-99", "kinds": ["a", "b"]}
    json.dumps(card.front_matter)


@pytest.mark.parametrize(
    ("front_matter", "problem"),
    [
        ("blob: !!binary aGVsbG8=", "!!binary values are not allowed"),
        ("x: !!int abc", "invalid literal for int()"),
        ("x: !!float abc", "could not convert string to float"),
    ],
)
def test_values_yaml_cannot_construct(front_matter: str, problem: str) -> None:
    with pytest.raises(MalformedFileError, match=problem):
        parse_model_card(f"---\n{front_matter}\n---\n", repo_id="org/x")


@pytest.mark.parametrize(
    "text",
    [
        "---\n" + "\n" * (MAX_CARD_BYTES - 100) + "x",
        "```" + " " * (MAX_CARD_BYTES - 100) + "`",
        "```yaml\n" + "\n" * (MAX_CARD_BYTES - 100) + "x",
        "# " + " " * (MAX_CARD_BYTES - 100) + "x",
    ],
    ids=[
        "unclosed front matter of newlines",
        "fence of spaces",
        "yaml block of newlines",
        "heading",
    ],
)
def test_cards_built_to_make_regexes_backtrack(text: str) -> None:
    # A quadratic pattern would take hours on these; the parser reads them in well under a
    # second (pytest-timeout guards the suite).
    card = parse_model_card(text)
    assert card.front_matter == {} and card.mergekit_yaml is None
