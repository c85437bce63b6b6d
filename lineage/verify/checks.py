"""Pairwise checks of a child against one declared parent: weights, or an adapter's fit.

Each returns a ``DeclaredVerdict``. The decision rule: a parent is ``confirmed`` when the
child's weights relate to it far beyond what an unrelated model of the same architecture
reaches (z ≥ ``Z_RELATED`` against the shift null, see ``relatedness``), ``contradicted``
when they do not, and ``unverifiable`` when there is nothing comparable.
"""

from __future__ import annotations

import numpy as np

from lineage.documents.verify import DeclaredVerdict
from lineage.records import ParentLink
from lineage.thresholds import SAME_WEIGHTS, Z_RELATED
from lineage.verify.aligned import align, matrices
from lineage.verify.family import Family, Node
from lineage.verify.relatedness import relatedness


def relative_distance(child: Node, parent: Node) -> float | None:
    assert child.fingerprint is not None and parent.fingerprint is not None
    tensors = matrices(align([child.fingerprint, parent.fingerprint]))
    if not tensors:
        return None
    difference = sum(float(((t.values[0] - t.values[1]) ** 2).sum()) for t in tensors)
    scale = sum(float((t.values[1] ** 2).sum()) for t in tensors)
    return float(np.sqrt(difference / scale)) if scale else None


def check_weights(family: Family, child: Node, parent: Node, link: ParentLink) -> DeclaredVerdict:
    """Does ``child`` descend from ``parent``? Compared in Δ-space where an ancestor is known."""
    name = parent.repo_id
    if child.fingerprint is None:
        return _unverifiable(name, link, _why_no_fingerprint(child, "this model"))
    if parent.revision is None:
        return _unverifiable(name, link, f"parent was not read (status {parent.status})")
    if parent.fingerprint is None:
        return _unverifiable(name, link, _why_no_fingerprint(parent, "the parent"))
    pair = matrices(align([child.fingerprint, parent.fingerprint]))
    if not pair:
        return _unverifiable(
            name,
            link,
            "different architecture: no weight matrix of the same name and shape "
            f"(signatures {child.fingerprint.signature} vs {parent.fingerprint.signature})",
        )

    distance = relative_distance(child, parent)
    if distance is not None and distance < SAME_WEIGHTS:
        return DeclaredVerdict(
            parent=name,
            status="confirmed",
            score=1.0,
            reason=f"same weights up to rounding (relative difference {distance:.2g}):"
            " a cast or copy",
            relation=link.relation,
            details={"distance": distance, "same_weights": True},
        )

    reference = family.nearest_fingerprinted_ancestor(
        name, signature=child.fingerprint.signature, exclude={child.repo_id}
    )
    if reference is not None:
        reference_fp = family.node(reference).fingerprint
        tensors = matrices(align([child.fingerprint, parent.fingerprint, reference_fp]))
        result = relatedness(
            [t.values[0] - t.values[2] for t in tensors],
            [t.values[1] - t.values[2] for t in tensors],
            space="delta",
        )
        against = f"Δ from {reference}"
    else:
        tensors = pair
        result = relatedness(
            [t.values[0] for t in tensors], [t.values[1] for t in tensors], space="raw"
        )
        against = "centred weights (no common ancestor fingerprinted)"
    details = {"z": round(result.z, 1), "reference": reference, "distance": distance}
    if result.z >= Z_RELATED and result.score > 0:
        return DeclaredVerdict(
            parent=name,
            status="confirmed",
            score=result.score,
            reason=f"weights descend from it: score {result.score:.3f} on {against}, "
            f"z={result.z:.0f} (an unrelated model scores z≈0)",
            relation=link.relation,
            details=details,
        )
    return DeclaredVerdict(
        parent=name,
        status="contradicted",
        score=result.score,
        reason=f"weights do not descend from it: score {result.score:.3f} on {against}, "
        f"z={result.z:.1f}, within what an unrelated model reaches (parents: z ≥ {Z_RELATED:.0f})",
        relation=link.relation,
        details=details,
    )


def check_adapter(child: Node, parent: Node, link: ParentLink) -> DeclaredVerdict:
    """An adapter holds no full weights: check that its modules exist in the parent and fit."""
    name = parent.repo_id
    adapter = child.snapshot.adapter if child.snapshot else None
    tensors = (
        child.snapshot.safetensors.tensors if child.snapshot and child.snapshot.safetensors else {}
    )
    if parent.snapshot is None or parent.snapshot.safetensors is None:
        return _unverifiable(name, link, "adapter only, and the parent's tensors are not known")
    parent_tensors = parent.snapshot.safetensors.tensors
    lora = {n: info for n, info in tensors.items() if ".lora_A." in n or ".lora_B." in n}
    if not lora:
        return _unverifiable(name, link, "adapter only, with no LoRA tensors to check")
    problems: list[str] = []
    modules: set[str] = set()
    for tensor_name, info in sorted(lora.items()):
        part = "lora_A" if ".lora_A." in tensor_name else "lora_B"
        module = tensor_name.split(f".{part}.")[0].removeprefix("base_model.model.")
        target = parent_tensors.get(f"{module}.weight")
        modules.add(module.rsplit(".", 1)[-1])
        if target is None:
            problems.append(f"{module} is not in the parent")
            continue
        if len(target.shape) != 2 or len(info.shape) != 2:
            problems.append(f"{module} is not a matrix")
            continue
        out_features, in_features = target.shape
        if part == "lora_A" and info.shape[1] != in_features:
            problems.append(f"{module} lora_A has {info.shape[1]} inputs, parent {in_features}")
        if part == "lora_B" and info.shape[0] != out_features:
            problems.append(f"{module} lora_B has {info.shape[0]} outputs, parent {out_features}")
    rank = adapter.r if adapter and adapter.r else None
    if problems:
        return DeclaredVerdict(
            parent=name,
            status="contradicted",
            score=0.0,
            reason=f"adapter does not fit the parent: {'; '.join(problems[:3])}",
            relation=link.relation,
            details={"problems": len(problems)},
        )
    return DeclaredVerdict(
        parent=name,
        status="unverifiable",
        score=None,
        reason=f"adapter only (LoRA r={rank}, on {', '.join(sorted(modules))}):"
        f" its {len(lora) // 2} modules exist in the parent with fitting shapes;"
        " weights are compared once merged",
        relation=link.relation,
        details={"adapter_fits": True},
    )


def unverifiable_reference(link: ParentLink) -> DeclaredVerdict:
    return _unverifiable(
        link.parent, link, f"named by a {link.parent_kind.replace('_', ' ')}, not a Hub repo"
    )


def _unverifiable(name: str, link: ParentLink, reason: str) -> DeclaredVerdict:
    return DeclaredVerdict(
        parent=name, status="unverifiable", score=None, reason=reason, relation=link.relation
    )


def _why_no_fingerprint(node: Node, who: str) -> str:
    snapshot = node.snapshot
    if snapshot is None:
        return f"{who} was not read"
    if snapshot.safetensors is None:
        kind = "pickle weights only" if snapshot.pickle_only else "no safetensors weights"
        kind = "GGUF weights only" if snapshot.has_gguf else kind
        return f"{who} has {kind}"
    return (
        f"{who} has no fingerprint (crawled with --no-fingerprint, or weights not in F32/F16/BF16)"
    )
