"""Repo id, revision and file name validation; parent reference classification."""

from __future__ import annotations

import pytest
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id as hub_validate_repo_id

from lineage.errors import InvalidReferenceError
from lineage.local_refs import normalise_local_path
from lineage.references import (
    MAX_REFERENCE_CHARS,
    parse_reference,
    validate_filename,
    validate_repo_id,
    validate_revision,
)

VALID_REPO_IDS = [
    "gpt2",
    "org/name",
    "Org-1/My_model.v2",
    "meta-llama/Llama-3.1-8B-Instruct",
    "TheBloke/Llama-2-7B-GGUF",
    "_private/x_",
    "a" * 96,
    "n" * 96 + "/" + "m" * 96,
]
INVALID_REPO_IDS = [
    "",
    "../x",
    "..",
    "a/b/c",
    "org/na me",
    "org/name\x00",
    "org/name\n",
    "org--x/y",
    "org/x..y",
    "org/x.",
    "org/x-",
    "org/x.git",
    "/abs",
    "org/",
    "/name",
    "-org/x",
    ".org/x",
    "a" * 97,
    "café/x",
    "org/na+me",
    "org/name@main",
    "https://huggingface.co/org/name",
]


@pytest.mark.parametrize("value", VALID_REPO_IDS)
def test_valid_repo_ids_pass_unchanged(value: str) -> None:
    assert validate_repo_id(value) == value


@pytest.mark.parametrize("value", INVALID_REPO_IDS)
def test_invalid_repo_ids_raise_one_line_naming_the_value(value: str) -> None:
    with pytest.raises(InvalidReferenceError) as caught:
        validate_repo_id(value)
    message = str(caught.value)
    assert "\n" not in message
    assert repr(value[:200]) in message
    assert "invalid repo id" in message


@pytest.mark.parametrize("value", VALID_REPO_IDS + INVALID_REPO_IDS)
def test_repo_id_rule_agrees_with_huggingface_hub(value: str) -> None:
    try:
        hub_validate_repo_id(value)
        hub_accepts = bool(value)  # the Hub client lets "" through as "no repo id"
    except HFValidationError:
        hub_accepts = False
    try:
        validate_repo_id(value)
        we_accept = True
    except InvalidReferenceError:
        we_accept = False
    assert we_accept == hub_accepts


def test_non_string_repo_id_is_refused() -> None:
    with pytest.raises(InvalidReferenceError, match="must be a string"):
        validate_repo_id(42)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "value", ["main", "v1.0", "refs/pr/1", "refs/convert/parquet", "a" * 40, "feature/x-y_z"]
)
def test_valid_revisions(value: str) -> None:
    assert validate_revision(value) == value


@pytest.mark.parametrize(
    "value",
    [
        "",
        "../main",
        "/main",
        "main/",
        "a..b",
        "ma\nin",
        "ma\x00in",
        "x" * 256,
        "ma in",
        "a~1",
        "a\\b",
    ],
)
def test_invalid_revisions(value: str) -> None:
    with pytest.raises(InvalidReferenceError) as caught:
        validate_revision(value)
    assert "\n" not in str(caught.value)
    assert "invalid revision" in str(caught.value)


@pytest.mark.parametrize(
    "value",
    ["model.safetensors", "sub/dir/x.json", "model-00001-of-00002.safetensors", ".gitattributes"],
)
def test_valid_filenames(value: str) -> None:
    assert validate_filename(value) == value


@pytest.mark.parametrize(
    "value",
    [
        "",
        "/etc/passwd",
        "../x",
        "a/../b",
        "a/..",
        "./x",
        "a\\b",
        "a\x00b",
        "C:/x",
        "c:",
        "a//b",
        "a/",
        "x" * 1025,
    ],
)
def test_unsafe_filenames(value: str) -> None:
    with pytest.raises(InvalidReferenceError) as caught:
        validate_filename(value)
    assert "\n" not in str(caught.value)
    assert "invalid file name" in str(caught.value)


@pytest.mark.parametrize(
    ("raw", "repo_id", "revision", "lora"),
    [
        ("org/name", "org/name", None, None),
        ("  org/name \n", "org/name", None, None),
        ("gpt2", "gpt2", None, None),
        ("org/name@main", "org/name", "main", None),
        (
            "org/name@4f1c0de5a9b7e3d2c1f0a9b8c7d6e5f4a3b2c1d0",
            "org/name",
            "4f1c0de5a9b7e3d2c1f0a9b8c7d6e5f4a3b2c1d0",
            None,
        ),
        ("org/name+org/lora", "org/name", None, "org/lora"),
        ("org/name+lora-path", "org/name", None, "lora-path"),
        ("org/name+./loras/mine", "org/name", None, "./loras/mine"),
        ("org/name@v1+org/lora@v2", "org/name", "v1", "org/lora@v2"),
        ("hf.co/org/name", "org/name", None, None),
        ("https://huggingface.co/org/name", "org/name", None, None),
        ("http://huggingface.co/org/name/", "org/name", None, None),
        ("https://huggingface.co/org/name/tree/dev", "org/name", "dev", None),
        ("https://hf.co/gpt2", "gpt2", None, None),
        ("hf://org/name", "org/name", None, None),
    ],
)
def test_repo_references(raw: str, repo_id: str, revision: str | None, lora: str | None) -> None:
    reference = parse_reference(raw)
    assert (reference.kind, reference.repo_id, reference.revision, reference.lora) == (
        "repo",
        repo_id,
        revision,
        lora,
    )
    assert reference.raw == raw.strip()
    assert reference.node_id == repo_id


@pytest.mark.parametrize(
    "raw",
    [
        "/home/me/ckpt",
        "./merged",
        "../x",
        "~/models/llama",
        "C:\\models\\llama",
        "C:/models/llama",
        "models\\llama",
        "a/b/c",
        "output/checkpoint-500/final",
        "file:///models/llama",
        ".",
        "/abs/base+/abs/lora",
    ],
)
def test_local_paths(raw: str) -> None:
    reference = parse_reference(raw)
    assert reference.kind == "local_path"
    assert reference.repo_id is None
    assert reference.raw == raw
    # The node is the normalised path (one folder written two ways is one node).
    assert reference.node_id == normalise_local_path(raw.split("+")[0])


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("org/na me", "repo id"),
        ("org--x/y", "'--'"),
        ("org/name@", "revision"),
        ("org/name@a@b", "more than one '@'"),
        ("org/name@../../x", "revision"),
        ("org/name+", "nothing after '+'"),
        ("a+b+c", "more than one '+'"),
        ("org/name+bad lora", "LoRA"),
        ("org/name\x00", "control characters"),
        ("https://example.com/org/name", "not a Hugging Face"),
        ("https://huggingface.co/datasets/org/data", "dataset"),
        ("https://huggingface.co/org/name/blob/main/README.md", "not a model page"),
        ("org/name.git", ".git"),
    ],
)
def test_invalid_references_say_what_is_wrong(raw: str, problem: str) -> None:
    reference = parse_reference(raw)
    assert reference.kind == "invalid"
    assert reference.repo_id is None
    assert problem in (reference.problem or "")


@pytest.mark.parametrize(
    "hostile",
    [
        None,
        42,
        ["org/a"],
        {"model": "x"},
        b"org/a",
        "x" * 100_000,
        "\x00" * 10,
        "@",
        "+",
        "/",
        "\\",
    ],
)
def test_parse_reference_never_raises(hostile: object) -> None:
    reference = parse_reference(hostile)  # type: ignore[arg-type]
    assert reference.kind in ("repo", "local_path", "invalid")
    assert len(reference.raw) <= MAX_REFERENCE_CHARS + 1


def test_huge_reference_is_kept_short() -> None:
    reference = parse_reference("org/" + "n" * 10_000)
    assert reference.kind == "invalid"
    assert reference.raw.endswith("…")
    assert len(reference.raw) == MAX_REFERENCE_CHARS + 1
