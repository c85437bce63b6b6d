"""The local source on trees the zoo does not cover."""

from __future__ import annotations

import json

from lineage.sources.local import LocalSource


def test_index_naming_a_missing_shard_is_an_error_naming_the_index(tmp_path):
    folder = tmp_path / "org" / "sharded"
    folder.mkdir(parents=True)
    (folder / "README.md").write_text("---\nlicense: mit\n---\n")
    (folder / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {"lm_head.weight": "model-00001-of-00002.safetensors"}})
    )
    snapshot = LocalSource(tmp_path).fetch("org/sharded", None, known={})
    assert snapshot.status == "error"
    assert snapshot.status_reason == (
        "model.safetensors.index.json: index names shard(s) not in the repo: "
        "model-00001-of-00002.safetensors"
    )
    assert snapshot.card is not None and snapshot.card.license == "mit"  # the rest is kept
