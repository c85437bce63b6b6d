"""FakeHub, exercised only through the real huggingface_hub client.

If these pass, the Hub source's tests that run against FakeHub test the project's code
and not the fake: the client parses what the fake serves exactly as it parses the Hub.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx2
import numpy as np
import pytest
from huggingface_hub import HfApi, get_session, hf_hub_download, hf_hub_url
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.utils import build_hf_headers, hf_raise_for_status, http_backoff

from testkit.hub_repos import gguf_file, json_file, model_card, safetensors_file
from testkit.hub_server import FakeHub

TOKEN = "hf_fake_valid_token"
LLAMA_CONFIG = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 8}
WEIGHTS = safetensors_file(
    {
        "model.embed_tokens.weight": np.arange(32, dtype=np.float32).reshape(8, 4),
        "model.norm.weight": np.ones(4, dtype=np.float16),
    }
)


def _base_files() -> dict[str, bytes]:
    card = {"license": "apache-2.0", "tags": ["tiny"], "language": ["en"], "datasets": ["org/d"]}
    return {
        "README.md": model_card(card),
        "config.json": json_file(LLAMA_CONFIG),
        "model.safetensors": WEIGHTS,
        "sub/dir/notes.txt": b"nested",
    }


def _child(base: str | list[str], **card: object) -> dict[str, bytes]:
    return {
        "README.md": model_card({"base_model": base, **card}),
        "config.json": json_file(LLAMA_CONFIG),
    }


@pytest.fixture
def hub() -> Iterator[FakeHub]:
    with FakeHub(page_size=2, tokens={TOKEN}) as server:
        server.add_repo("org/base", _base_files(), downloads=10)
        server.add_repo("org/ft", _child("org/base"))
        server.add_repo(
            "org/adapter",
            {
                "README.md": model_card({"base_model": "org/base"}),
                "adapter_config.json": json_file(
                    {"base_model_name_or_path": "org/base", "task_type": "CAUSAL_LM", "r": 8}
                ),
            },
        )
        server.add_repo(
            "org/merge",
            {**_child(["org/base", "org/ft"]), "mergekit_config.yml": b"merge_method: linear\n"},
        )
        quantized = {**LLAMA_CONFIG, "quantization_config": {"quant_method": "bitsandbytes"}}
        server.add_repo(
            "org/quant",
            {
                "README.md": model_card({"base_model": "org/ft"}),
                "config.json": json_file(quantized),
            },
        )
        server.add_repo(
            "org/gguf",
            {"README.md": model_card({"base_model": "org/base"}), "m.Q4.gguf": gguf_file()},
        )
        server.add_repo("org/declared", _child("org/base", base_model_relation="merge"))
        server.add_repo("org/bad-yaml", {"README.md": model_card("base_model: [org/base\n  x: :")})
        server.add_repo("org/private", _child("org/base"), private=True)
        server.add_repo("org/gated", _base_files(), gated=True)
        yield server


@pytest.fixture
def api(hub: FakeHub) -> HfApi:
    return HfApi(endpoint=hub.endpoint, token=False)


@pytest.fixture
def authed(hub: FakeHub) -> HfApi:
    return HfApi(endpoint=hub.endpoint, token=TOKEN)


# -- model info ---------------------------------------------------------------------------


def test_model_info_default_fields(hub: FakeHub, api: HfApi) -> None:
    info = api.model_info("org/base")

    assert info.sha == hub.head_sha("org/base")
    assert info.card_data is not None and info.card_data.license == "apache-2.0"
    assert info.config == {"architectures": ["LlamaForCausalLM"], "model_type": "llama"}
    assert info.safetensors is not None
    assert info.safetensors.parameters == {"F32": 32, "F16": 4}
    assert info.safetensors.total == 36
    assert info.library_name == "transformers" and info.pipeline_tag == "text-generation"
    assert info.gated is False and info.private is False
    assert info.created_at is not None and info.last_modified is not None
    assert {s.rfilename for s in info.siblings or []} == {
        ".gitattributes",
        "README.md",
        "config.json",
        "model.safetensors",
        "sub/dir/notes.txt",
    }
    assert {"transformers", "safetensors", "llama", "tiny", "license:apache-2.0"} <= set(
        info.tags or []
    )
    assert {"en", "dataset:org/d", "region:us"} <= set(info.tags or [])


def test_model_info_expand_returns_only_requested_properties(api: HfApi) -> None:
    info = api.model_info("org/ft", expand=["config", "cardData"])

    assert info.config == {"architectures": ["LlamaForCausalLM"], "model_type": "llama"}
    assert info.card_data is not None and info.card_data.base_model == "org/base"
    assert info.sha is None and info.tags is None and info.siblings is None


def test_model_info_files_metadata_reports_lfs(api: HfApi) -> None:
    siblings = {s.rfilename: s for s in api.model_info("org/base", files_metadata=True).siblings}

    weights = siblings["model.safetensors"]
    assert weights.size == len(WEIGHTS) and weights.lfs is not None
    assert weights.lfs.size == len(WEIGHTS)
    assert siblings["config.json"].lfs is None and siblings["config.json"].blob_id


@pytest.mark.parametrize(
    ("repo_id", "relation", "base"),
    [
        ("org/ft", "finetune", "org/base"),
        ("org/adapter", "adapter", "org/base"),
        ("org/merge", "merge", "org/ft"),
        ("org/quant", "quantized", "org/ft"),
        ("org/gguf", "quantized", "org/base"),
        ("org/declared", "merge", "org/base"),
    ],
)
def test_hub_adds_base_model_relation_tags(
    api: HfApi, repo_id: str, relation: str, base: str
) -> None:
    tags = api.model_info(repo_id, expand=["tags"]).tags or []

    assert f"base_model:{base}" in tags
    assert f"base_model:{relation}:{base}" in tags


def test_adapter_config_and_gguf_are_summarised(api: HfApi) -> None:
    adapter = api.model_info("org/adapter", expand=["config", "library_name"])
    gguf = api.model_info("org/gguf", expand=["gguf", "baseModels"])

    assert adapter.config == {
        "peft": {"base_model_name_or_path": "org/base", "task_type": "CAUSAL_LM"}
    }
    assert adapter.library_name == "peft"
    assert gguf.gguf == {"total": 32, "architecture": "llama", "context_length": 2048}
    assert gguf.base_models is not None and gguf.base_models["relation"] == "quantized"
    assert [m["id"] for m in gguf.base_models["models"]] == ["org/base"]


def test_malformed_front_matter_omits_card_data(api: HfApi) -> None:
    info = api.model_info("org/bad-yaml")

    assert info.card_data is None
    assert not any(tag.startswith("base_model:") for tag in info.tags or [])


def test_revisions_by_sha_tag_and_encoded_branch(hub: FakeHub, api: HfApi) -> None:
    old = hub.head_sha("org/ft")
    new = hub.commit("org/ft", {"README.md": model_card({"base_model": "org/merge"})})
    hub.add_tag_or_branch("org/ft", "v1.0", old)
    hub.add_tag_or_branch("org/ft", "release/v1", old, branch=True)

    assert api.model_info("org/ft").sha == new
    assert api.model_info("org/ft").card_data.base_model == "org/merge"
    for revision in (old, "v1.0", "release/v1"):
        info = api.model_info("org/ft", revision=revision)
        assert info.sha == old and info.card_data.base_model == "org/base"
    refs = api.list_repo_refs("org/ft")
    assert {b.name for b in refs.branches} == {"main", "release/v1"}
    assert [(t.name, t.target_commit) for t in refs.tags] == [("v1.0", old)]
    assert [c.commit_id for c in api.list_repo_commits("org/ft")] == [new, old]


# -- listing ------------------------------------------------------------------------------


def test_list_models_filters_on_tags_and_follows_link_pages(hub: FakeHub, api: HfApi) -> None:
    for i in range(5):
        hub.add_repo(f"kids/ft-{i}", _child("org/base"))
    hub.reset_log()

    found = [m.id for m in api.list_models(filter="base_model:finetune:org/base")]

    # org/ft, org/private is hidden; five kids: 6 results on pages of 2
    assert found == ["org/ft", *(f"kids/ft-{i}" for i in range(5))]
    assert hub.count(method="GET", path_contains="/api/models") == 3
    assert all("cursor=" in r.query for r in hub.requests[1:])


def test_list_models_default_fields_and_expand(api: HfApi) -> None:
    plain = next(iter(api.list_models(filter="base_model:adapter:org/base")))
    expanded = next(iter(api.list_models(filter="base_model:adapter:org/base", expand=["sha"])))

    assert plain.id == "org/adapter" and plain.sha is None and plain.tags
    assert expanded.sha is not None and expanded.tags is None


def test_list_models_and_filters_author_search_and_private(api: HfApi, authed: HfApi) -> None:
    both = [m.id for m in api.list_models(filter=["base_model:org/base", "llama"])]
    assert both == ["org/ft", "org/merge", "org/declared"]
    assert [m.id for m in api.list_models(search="GGUF")] == ["org/gguf"]
    assert [m.id for m in api.list_models(author="nobody")] == []
    assert "org/private" not in {m.id for m in api.list_models()}
    assert "org/private" in {m.id for m in authed.list_models()}


def test_list_models_limit_stops_early(hub: FakeHub, api: HfApi) -> None:
    hub.reset_log()

    assert len(list(api.list_models(limit=3))) == 3
    assert hub.count(path_contains="/api/models") == 2


# -- tree ---------------------------------------------------------------------------------


def test_list_repo_tree(api: HfApi) -> None:
    top = {e.path: e for e in api.list_repo_tree("org/base")}
    everything = {e.path for e in api.list_repo_tree("org/base", recursive=True)}
    nested = [e.path for e in api.list_repo_tree("org/base", path_in_repo="sub/dir")]

    assert set(top) == {".gitattributes", "README.md", "config.json", "model.safetensors", "sub"}
    assert top["model.safetensors"].lfs is not None
    assert top["model.safetensors"].size == len(WEIGHTS)
    assert top["config.json"].lfs is None
    assert {"sub", "sub/dir", "sub/dir/notes.txt"} <= everything
    assert nested == ["sub/dir/notes.txt"]
    with pytest.raises(EntryNotFoundError):
        list(api.list_repo_tree("org/base", path_in_repo="missing"))


# -- downloads ----------------------------------------------------------------------------


def test_hf_hub_download_then_cache_hits(hub: FakeHub, tmp_path: Path) -> None:
    sha = hub.head_sha("org/base")
    kwargs = {"endpoint": hub.endpoint, "cache_dir": tmp_path, "token": False}
    hub.reset_log()

    first = hf_hub_download("org/base", "model.safetensors", **kwargs)
    assert Path(first).read_bytes() == WEIGHTS
    assert hub.count(method="HEAD") == 1 and hub.count(method="GET") == 1
    assert hub.bytes_sent("/resolve/") == len(WEIGHTS)

    hub.reset_log()
    pinned = hf_hub_download("org/base", "model.safetensors", revision=sha, **kwargs)
    assert pinned == first and hub.requests == []  # a sha in the cache needs no request

    again = hf_hub_download("org/base", "model.safetensors", **kwargs)
    assert again == first
    assert hub.count(method="HEAD") == 1 and hub.count(method="GET") == 0


def test_download_through_cdn_redirect_drops_the_token(tmp_path: Path) -> None:
    with FakeHub(tokens={TOKEN}, redirect_lfs=True) as hub:
        hub.add_repo("org/base", _base_files())
        path = hf_hub_download(
            "org/base", "model.safetensors", endpoint=hub.endpoint, cache_dir=tmp_path, token=TOKEN
        )

        assert Path(path).read_bytes() == WEIGHTS
        cdn = [r for r in hub.requests if r.path.startswith("/_cdn/")]
        assert [(r.method, r.auth_present) for r in cdn] == [("GET", False)]
        assert hub.count(path_contains="/resolve/") == 1  # HEAD stopped at the 302


def test_get_safetensors_metadata_reads_only_the_header(hub: FakeHub, api: HfApi) -> None:
    hub.reset_log()

    metadata = api.get_safetensors_metadata("org/base")

    tensors = metadata.files_metadata["model.safetensors"].tensors
    assert tensors["model.embed_tokens.weight"].shape == [8, 4]
    assert tensors["model.norm.weight"].dtype == "F16"
    assert hub.count(method="GET") == 1


def test_raw_range_get_through_the_client_session(hub: FakeHub) -> None:
    url = hf_hub_url("org/base", "model.safetensors", endpoint=hub.endpoint)
    headers = build_hf_headers(token=False)
    session = get_session()

    head = session.get(url, headers={**headers, "Range": "bytes=0-7"})
    tail = session.get(url, headers={**headers, "Range": "bytes=-4"})
    rest = session.get(url, headers={**headers, "Range": f"bytes={len(WEIGHTS) - 2}-"})
    beyond = session.get(url, headers={**headers, "Range": f"bytes={len(WEIGHTS)}-"})

    assert head.status_code == 206 and head.content == WEIGHTS[:8]
    assert head.headers["Content-Range"] == f"bytes 0-7/{len(WEIGHTS)}"
    assert head.headers["Accept-Ranges"] == "bytes"
    assert head.headers["X-Repo-Commit"] == hub.head_sha("org/base")
    assert tail.content == WEIGHTS[-4:] and rest.content == WEIGHTS[-2:]
    assert beyond.status_code == 416
    with pytest.raises(HfHubHTTPError):
        hf_raise_for_status(beyond)
    assert [r.range for r in hub.requests][-1] == f"bytes={len(WEIGHTS)}-"


# -- errors -------------------------------------------------------------------------------


def test_unknown_and_private_repos(api: HfApi, authed: HfApi) -> None:
    with pytest.raises(RepositoryNotFoundError) as anonymous:
        api.model_info("org/nope")
    with pytest.raises(RepositoryNotFoundError) as with_token:
        authed.model_info("org/nope")
    with pytest.raises(RepositoryNotFoundError):
        api.model_info("org/private")

    assert anonymous.value.response.status_code == 401
    assert with_token.value.response.status_code == 404
    assert authed.model_info("org/private").private is True


def test_invalid_token_is_not_reported_as_a_missing_repo(hub: FakeHub) -> None:
    with pytest.raises(HfHubHTTPError) as error:
        HfApi(endpoint=hub.endpoint, token="hf_wrong").model_info("org/base")

    assert not isinstance(error.value, RepositoryNotFoundError)
    assert error.value.response.status_code == 401


def test_gated_repo_metadata_is_public_files_are_not(hub: FakeHub, tmp_path: Path) -> None:
    assert HfApi(endpoint=hub.endpoint, token=False).model_info("org/gated").gated == "auto"
    kwargs = {"endpoint": hub.endpoint, "cache_dir": tmp_path}

    with pytest.raises(GatedRepoError):
        hf_hub_download("org/gated", "config.json", token=False, **kwargs)
    path = hf_hub_download("org/gated", "config.json", token=TOKEN, **kwargs)

    assert Path(path).read_bytes() == json_file(LLAMA_CONFIG)


def test_unknown_revision_and_missing_file(hub: FakeHub, api: HfApi, tmp_path: Path) -> None:
    kwargs = {"endpoint": hub.endpoint, "cache_dir": tmp_path, "token": False}

    with pytest.raises(RevisionNotFoundError):
        api.model_info("org/base", revision="no-such-branch")
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download("org/base", "config.json", revision="0" * 40, **kwargs)
    with pytest.raises(EntryNotFoundError):
        hf_hub_download("org/base", "missing.json", **kwargs)
    assert api.file_exists("org/base", "config.json")
    assert not api.file_exists("org/base", "missing.json")


def test_deleted_repo_is_gone(hub: FakeHub, api: HfApi) -> None:
    hub.delete_repo("org/ft")

    with pytest.raises(RepositoryNotFoundError):
        api.model_info("org/ft")


# -- faults and accounting ----------------------------------------------------------------


def test_429_with_retry_after_then_success_via_http_backoff(hub: FakeHub) -> None:
    hub.fail_next("/api/models/org/base", [429], retry_after=0)
    hub.reset_log()
    url = f"{hub.endpoint}/api/models/org/base"

    response = http_backoff("GET", url, headers=build_hf_headers(token=False))

    assert response.status_code == 200 and response.json()["id"] == "org/base"
    assert [r.status for r in hub.requests] == [429, 200]


def test_injected_errors_reach_the_caller_without_retry(hub: FakeHub, api: HfApi) -> None:
    hub.fail_next("/api/models/org/base", [429, 503], retry_after=7)

    with pytest.raises(HfHubHTTPError) as rate_limited:
        api.model_info("org/base")
    with pytest.raises(HfHubHTTPError) as unavailable:
        api.model_info("org/base")

    assert rate_limited.value.response.headers["Retry-After"] == "7"
    assert unavailable.value.response.status_code == 503
    assert api.model_info("org/base").id == "org/base"


def test_delay_makes_the_client_time_out(hub: FakeHub, api: HfApi) -> None:
    hub.delay("/api/models/org/base", 1.0)

    with pytest.raises(httpx2.TimeoutException):
        api.model_info("org/base", timeout=0.2)
    assert api.model_info("org/base", timeout=5).id == "org/base"


def test_concurrent_requests_are_served_in_parallel(hub: FakeHub) -> None:
    hub.latency_s = 0.2
    hub.reset_log()
    api = HfApi(endpoint=hub.endpoint, token=False)
    results: list[str] = []

    def fetch() -> None:
        results.append(api.model_info("org/base", expand=["sha"]).id)

    threads = [threading.Thread(target=fetch) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert results == ["org/base"] * 16
    assert hub.count() == 16 and hub.max_in_flight > 1
    assert all(not r.auth_present for r in hub.requests)


def test_add_local_tree(tmp_path: Path) -> None:
    (tmp_path / "acme" / "tiny").mkdir(parents=True)
    (tmp_path / "acme" / "tiny" / "config.json").write_bytes(json_file(LLAMA_CONFIG))
    (tmp_path / "acme" / "tiny" / ".git").mkdir()
    (tmp_path / "acme" / "tiny" / ".git" / "HEAD").write_text("ref: refs/heads/main\n")

    with FakeHub() as hub:
        shas = hub.add_local_tree(tmp_path)
        files = HfApi(endpoint=hub.endpoint, token=False).list_repo_files("acme/tiny")

    assert list(shas) == ["acme/tiny"]
    assert sorted(files) == [".gitattributes", "config.json"]
