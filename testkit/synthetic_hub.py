"""A synthetic Hub family of 2,000+ repos: one root, 12 x 12 x 14 descendants, a tenth of
them mergekit merges of two parents. The crawl benchmark times it; the soak test crawls it
through random faults and compares the result with a fault-free crawl.
"""

from __future__ import annotations

import numpy as np

from testkit.hub_repos import json_file, model_card, safetensors_file
from testkit.hub_server import FakeHub

ROOT = "bench-org/root"
FANOUT = (12, 12, 14)  # children per node at depths 1, 2, 3: 12 + 144 + 2016 = 2172 below root


def _weights(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    return safetensors_file(
        {
            "model.embed_tokens.weight": rng.standard_normal((16, 8)).astype(np.float16),
            "model.layers.0.self_attn.q_proj.weight": rng.standard_normal((8, 8)).astype(
                np.float16
            ),
            "model.norm.weight": np.ones(8, dtype=np.float16),
        }
    )


def _config() -> bytes:
    return json_file(
        {
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "hidden_size": 8,
            "num_hidden_layers": 1,
            "vocab_size": 16,
        }
    )


def build_synthetic_hub(hub: FakeHub) -> int:
    """Populate ``hub``; returns the number of repos."""
    hub.add_repo(
        ROOT,
        {
            "README.md": model_card({"license": "apache-2.0"}),
            "config.json": _config(),
            "model.safetensors": _weights(0),
        },
    )
    level = [ROOT]
    count = 1
    for depth, fanout in enumerate(FANOUT, start=1):
        next_level = []
        for parent_index, parent in enumerate(level):
            for child_index in range(fanout):
                repo_id = f"bench-org/d{depth}-p{parent_index}-c{child_index}"
                files = {"config.json": _config(), "model.safetensors": _weights(count)}
                if child_index % 10 == 9 and parent_index + 1 < len(level):
                    other = level[parent_index + 1]
                    recipe = (
                        f"merge_method: linear\nmodels:\n  - model: {parent}\n"
                        f"    parameters:\n      weight: 0.5\n  - model: {other}\n"
                        f"    parameters:\n      weight: 0.5\ndtype: float16\n"
                    )
                    files["mergekit_config.yml"] = recipe.encode()
                    files["README.md"] = model_card(
                        {
                            "base_model": [parent, other],
                            "library_name": "transformers",
                            "tags": ["mergekit", "merge"],
                        }
                    )
                else:
                    files["README.md"] = model_card({"base_model": parent, "license": "apache-2.0"})
                hub.add_repo(repo_id, files)
                next_level.append(repo_id)
                count += 1
        level = next_level
    return count
