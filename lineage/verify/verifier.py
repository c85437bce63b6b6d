"""``lineage verify``: check a model's declared lineage against its weights.

For one model in the registry (crawled and fingerprinted):
1. each declared parent is confirmed, contradicted or unverifiable (``checks``);
2. a declared merge is re-derived from the parents' weights and compared with its recipe;
3. same-architecture models in the registry are searched for parents the card omits: an
   exact merge of registry models, or, when no declared parent holds, the nearest related
   model that sits closer to the family's root;
4. a single-parent Δ of low rank is reported as a merged LoRA;
5. findings and inferred edges (``declared=False``, evidence ``weights``) are written;
   declared edges are never touched.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from lineage.errors import LineageError
from lineage.fingerprint import METHOD_VERSION
from lineage.records import Evidence, ParentLink
from lineage.verify import checks
from lineage.verify.aligned import align, matrices
from lineage.verify.family import Family, Node
from lineage.verify.lowrank import merged_lora
from lineage.verify.merges import (
    EXACT_RESIDUAL,
    SPARSE_ZERO_FRACTION,
    MergeEstimate,
    estimate_sparse,
    fit_linear,
    fit_slerp,
    sparse_fraction,
)
from lineage.verify.relatedness import relatedness
from lineage.verify.report import DeclaredVerdict, InferredParent, VerifyReport
from registry.database import Registry
from registry.weights import FindingRecord, replace_findings, replace_inferred_edges

MAX_MERGE_PARENTS = 4
COEFFICIENT_TOLERANCE = 0.05
DENSITY_TOLERANCE = 0.1
SPARSE_METHODS = ("ties", "dare_ties")
STAGE = "verify"


class NotVerifiableError(LineageError):
    """The model is not in the registry, or was never read successfully."""


def verify(registry: Registry, repo_id: str, *, write: bool = True) -> VerifyReport:
    """Verify ``repo_id``'s head revision; record findings and inferred edges if ``write``."""
    with registry.session(write=write) as session:
        family = Family(session, METHOD_VERSION)
        node = family.node(repo_id)
        if node.revision is None or node.snapshot is None:
            raise NotVerifiableError(
                f"not in the registry with a readable revision (status {node.status}); "
                "run `lineage crawl` on it first",
                repo_id=repo_id,
            )
        report = _Verification(family, node).run()
        if write:
            replace_findings(session, node.revision, STAGE, report.findings, method=METHOD_VERSION)
            replace_inferred_edges(session, node.revision, _inferred_links(report))
        return report


class _Verification:
    def __init__(self, family: Family, node: Node):
        self.family = family
        self.node = node
        assert node.snapshot is not None and node.revision is not None
        self.snapshot = node.snapshot
        self.report = VerifyReport(node.repo_id, node.revision.sha)

    def run(self) -> VerifyReport:
        fingerprint = self.node.fingerprint
        if fingerprint is not None:
            self.report.fingerprint = {
                "method": fingerprint.method,
                "signature": fingerprint.signature,
                "values": fingerprint.value_count,
                "bytes_read": fingerprint.bytes_read,
                "weight_bytes": fingerprint.weight_bytes,
            }
        for link in self.snapshot.parents:
            self.report.declared.append(self._check(link))
        self._declared_merge()
        self._infer()
        self._merged_lora()
        self._findings()
        return self.report

    # -- 1. declared parents ---------------------------------------------------------------

    def _check(self, link: ParentLink) -> DeclaredVerdict:
        if link.parent_kind == "local_path" and link.candidate:
            return self._check_candidate(link)
        if link.parent_kind != "repo":
            return checks.unverifiable_reference(link)
        parent = self.family.node(link.parent)
        if self.snapshot.adapter is not None and self.node.fingerprint is None:
            return checks.check_adapter(self.node, parent, link)
        return checks.check_weights(self.family, self.node, parent, link)

    def _check_candidate(self, link: ParentLink) -> DeclaredVerdict:
        """A local folder whose name maps to a Hub repo: the weights say whether it is it.

        Only a recorded, fingerprinted candidate can be compared (crawl it first); the
        verdict stays the local reference's, with the candidate named in its reason.
        """
        candidate = link.candidate or ""
        verdict = checks.check_weights(self.family, self.node, self.family.node(candidate), link)
        if verdict.status == "unverifiable":
            reason = (
                f"named by a local path; its candidate {candidate} could not be compared: "
                f"{verdict.reason} (crawl {candidate} to compare it)"
            )
        else:
            reason = f"named by a local path; the weights {verdict.status} it is {candidate}: "
            reason += verdict.reason
        return DeclaredVerdict(
            link.parent,
            verdict.status,
            verdict.score,
            reason,
            link.relation,
            {**verdict.details, "candidate": candidate},
        )

    # -- 2. the declared merge -------------------------------------------------------------

    def _declared_merge(self) -> None:
        recipe = self.snapshot.mergekit
        links = [link for link in self.snapshot.parents if link.parent_kind == "repo"]
        base = next((link.parent for link in links if link.role == "base"), None)
        if recipe is not None and recipe.base_model:
            base = recipe.base_model
        method = recipe.merge_method if recipe else None
        parents = _unique(link.parent for link in links if link.parent != base)
        if method is None and len(parents) < 2:
            return
        if method == "slerp" and base is not None:
            parents, base = [base, *parents], None  # slerp's base_model is its t = 0 end
        declared = {
            "method": method,
            "base": base,
            "weights": {
                link.parent: _scalar(link.weight) for link in links if link.parent in parents
            },
            "density": {
                link.parent: _scalar(link.density) for link in links if link.parent in parents
            },
            "t": next((_scalar(link.t) for link in links if link.t is not None), None),
        }
        self.report.declared_merge = declared
        estimate = self._estimate(parents, base, method)
        if estimate is None:
            return
        self.report.merge = estimate
        for problem in _recipe_problems(declared, estimate):
            self.report.findings.append(
                FindingRecord("recipe_mismatch", problem, "warning", details=estimate.to_dict())
            )

    def _estimate(
        self, parents: Sequence[str], base: str | None, method: str | None
    ) -> MergeEstimate | None:
        nodes = [self.family.node(name) for name in [*parents, *([base] if base else [])]]
        if self.node.fingerprint is None or any(node.fingerprint is None for node in nodes):
            return None
        tensors = align([self.node.fingerprint, *(node.fingerprint for node in nodes)])
        if not tensors:
            return None
        base_index = len(parents) + 1 if base else None
        fits: dict[str, MergeEstimate] = {"linear": fit_linear(tensors, parents, base=base_index)}
        if len(parents) == 2 and (method in (None, "slerp") or base is None):
            fits["slerp"] = fit_slerp(tensors, parents)
        if base_index is not None and (
            method in SPARSE_METHODS
            or sparse_fraction(tensors, base=base_index) > SPARSE_ZERO_FRACTION
        ):
            fits["sparse"] = estimate_sparse(tensors, parents, base=base_index)
        wanted = {"slerp": "slerp", "ties": "sparse", "dare_ties": "sparse"}.get(
            method or "", "linear"
        )
        chosen = fits.get(wanted) or fits["linear"]
        if not chosen.exact:
            exact = [fit for fit in fits.values() if fit.exact]
            if exact:
                chosen = min(exact, key=lambda fit: fit.residual)
            elif "sparse" in fits and method is None:
                chosen = fits["sparse"]
        return chosen

    # -- 3. parents the card does not name -------------------------------------------------

    def _infer(self) -> None:
        fingerprint = self.node.fingerprint
        if fingerprint is None:
            return
        me = self.node.repo_id
        declared = {verdict.parent for verdict in self.report.declared}
        confirmed = [v.parent for v in self.report.declared if v.status == "confirmed"]
        excluded = {me} | self.family.descendants(me)
        related: dict[str, float] = {}
        for name in self.family.same_architecture(fingerprint):
            if name in excluded:
                continue
            other = self.family.node(name).fingerprint
            tensors = matrices(align([fingerprint, other]))
            if not tensors:
                continue
            result = relatedness(
                [t.values[0] for t in tensors], [t.values[1] for t in tensors], space="raw"
            )
            if result.z >= checks.Z_RELATED and result.score > 0:
                related[name] = result.z
        if not related:
            return
        root = self._root(related, confirmed)
        unexplained = self.report.merge is None or not self.report.merge.exact
        if unexplained and self._exact_merge(related, declared, confirmed, root):
            return
        non_base = [name for name in confirmed if name != self._declared_base()]
        if not non_base and root != me:
            self._nearest_parent(related, declared, root)

    def _root(self, related: dict[str, float], confirmed: list[str]) -> str | None:
        """The family's root: of the related models without a declared parent (this one
        included), the one most models declare descent from; then the earliest upload."""
        pool = {*related, *confirmed, self.node.repo_id}
        roots = [name for name in pool if not self.family.ancestors(name)]
        if not roots:
            return None

        def rank(name: str) -> tuple[int, float, str]:
            created = self.family.node(name).created_at
            return (
                -len(self.family.descendants(name)),
                created.timestamp() if created else math.inf,
                name,
            )

        return min(roots, key=rank)

    def _exact_merge(
        self, related: dict[str, float], declared: set[str], confirmed: list[str], root: str | None
    ) -> bool:
        """Greedy search for registry models the child is an exact combination of."""
        chosen = [name for name in confirmed if name != root and name != self._declared_base()]
        pool = [name for name in related if name not in (root, self.node.repo_id, *chosen)]
        current = self._estimate(chosen, root, None) if chosen else None
        while len(chosen) < MAX_MERGE_PARENTS and pool:
            trials = []
            for name in pool:
                fit = self._estimate([*chosen, name], root, None)
                if fit is not None:
                    trials.append((fit.residual, name, fit))
            if not trials:
                break
            residual, name, fit = min(trials, key=lambda trial: trial[0])
            if current is not None and residual > 0.8 * current.residual:
                break
            chosen.append(name)
            pool.remove(name)
            current = fit
            positive = all(value > 0.02 for value in fit.coefficients.values())
            if fit.exact and len(chosen) >= 2 and positive:
                self.report.merge = fit
                for parent in chosen:
                    if parent in declared:
                        continue
                    self.report.inferred.append(
                        InferredParent(
                            parent,
                            "merge",
                            max(0.0, min(0.999, 1.0 - fit.residual / EXACT_RESIDUAL * 0.5)),
                            f"this model is an exact {fit.method} merge of {', '.join(chosen)}"
                            f" (relative residual {fit.residual:.2g})",
                            {"coefficient": round(fit.coefficients.get(parent, math.nan), 4)},
                        )
                    )
                return True
        return False

    def _nearest_parent(
        self, related: dict[str, float], declared: set[str], root: str | None
    ) -> None:
        """No declared parent holds: the nearest related model closer to the root is the parent."""
        me = self.node
        distances: dict[str, float] = {}
        for name in related:
            distance = checks.relative_distance(me, self.family.node(name))
            if distance is not None:
                distances[name] = distance
        if root is not None and root != me.repo_id:
            root_node = self.family.node(root)
            mine = checks.relative_distance(me, root_node) or 0.0
            older = {
                name: distance
                for name, distance in distances.items()
                if name == root
                or (checks.relative_distance(self.family.node(name), root_node) or 0.0) < mine
            }
        else:
            older = distances
        if not older:
            return
        ranked = sorted(older.items(), key=lambda item: item[1])
        parent, nearest = ranked[0]
        if parent in declared:
            return
        runner_up = ranked[1] if len(ranked) > 1 else None
        # The Δ test says whether this model carries the candidate's own update (then the
        # candidate, not its parent, is the parent); the distance margin how clearly.
        carries = self._carries_update(parent)
        if carries is not None and carries < checks.Z_RELATED:
            return
        confidence = 1.0 - 0.5 * (nearest / runner_up[1]) ** 2 if runner_up else 0.9
        relation = "quantized" if nearest < checks.SAME_WEIGHTS else "finetune"
        reason = f"nearest related model by weights (relative distance {nearest:.3g}"
        if runner_up:
            reason += f"; next {runner_up[0]} at {runner_up[1]:.3g}"
        reason += ")"
        if root is not None and parent != root:
            reason += f", and closer than this model to the family root {root}"
        created_parent = self.family.node(parent).created_at
        created_me = me.created_at
        if created_parent and created_me:
            earlier = created_parent <= created_me
            reason += "; uploaded " + ("before" if earlier else "after") + " this model"
            if not earlier:
                confidence *= 0.5
        self.report.inferred.append(
            InferredParent(parent, relation, max(0.0, min(confidence, 0.999)), reason)
        )

    def _carries_update(self, candidate: str) -> float | None:
        """z of Δ-relatedness to ``candidate`` against its own declared parent, if known."""
        fingerprint = self.node.fingerprint
        other = self.family.node(candidate).fingerprint
        if fingerprint is None or other is None:
            return None
        grand = self.family.nearest_fingerprinted_ancestor(
            candidate, signature=fingerprint.signature, exclude={self.node.repo_id}
        )
        if grand is None:
            return None
        tensors = matrices(align([fingerprint, other, self.family.node(grand).fingerprint]))
        result = relatedness(
            [t.values[0] - t.values[2] for t in tensors],
            [t.values[1] - t.values[2] for t in tensors],
            space="delta",
        )
        return result.z if result.score > 0 else -abs(result.z)

    # -- 4. merged LoRA --------------------------------------------------------------------

    def _merged_lora(self) -> None:
        if self.node.fingerprint is None or (self.report.merge and self.report.merge.exact):
            return
        if any(verdict.details.get("same_weights") for verdict in self.report.declared):
            return
        parents = [v.parent for v in self.report.declared if v.status == "confirmed"]
        parents += [p.parent for p in self.report.inferred if p.relation == "finetune"]
        if len(parents) != 1:
            return
        parent = self.family.node(parents[0])
        if parent.fingerprint is None:
            return
        noise = max(_rounding(self.node), _rounding(parent))
        found = merged_lora(align([self.node.fingerprint, parent.fingerprint]), noise_rel=noise)
        if found is not None:
            self.report.merged_lora = found
            self.report.merged_lora_parent = parent.repo_id

    # -- 5. findings -----------------------------------------------------------------------

    def _findings(self) -> None:
        findings = self.report.findings
        for verdict in self.report.declared:
            if verdict.status == "contradicted":
                findings.append(
                    FindingRecord(
                        "lineage_contradiction",
                        f"card names {verdict.parent} as a parent, but {verdict.reason}",
                        "high",
                        verdict.parent,
                        verdict.to_dict(),
                    )
                )
            elif verdict.status == "unverifiable":
                findings.append(
                    FindingRecord(
                        "unverifiable",
                        f"{verdict.parent}: {verdict.reason}",
                        "info",
                        verdict.parent,
                        verdict.to_dict(),
                    )
                )
        for parent in self.report.inferred:
            findings.append(
                FindingRecord(
                    "undeclared_parent",
                    f"weights show {parent.parent} as an undeclared {parent.relation} parent "
                    f"(confidence {parent.confidence:.2f}): {parent.reason}",
                    "warning",
                    parent.parent,
                    parent.to_dict(),
                )
            )
        merge = self.report.merge
        declared_merge = self.report.declared_merge
        unexplained = merge is not None and not merge.exact and not self.report.inferred
        if declared_merge and unexplained and merge.method not in SPARSE_METHODS:
            findings.append(
                FindingRecord(
                    "recipe_mismatch",
                    f"the declared parents do not reproduce the weights as a {merge.method}"
                    f" merge (relative residual {merge.residual:.2g})",
                    "warning",
                    details=merge.to_dict(),
                )
            )
        if self.report.merged_lora is not None:
            lora = self.report.merged_lora
            findings.append(
                FindingRecord(
                    "merged_lora",
                    f"Δ from {self.report.merged_lora_parent} has rank {lora.rank} on "
                    f"{', '.join(lora.modules)}: a LoRA merged into the weights",
                    "info",
                    self.report.merged_lora_parent,
                    lora.to_dict(),
                )
            )

    def _declared_base(self) -> str | None:
        recipe = self.snapshot.mergekit
        if recipe is not None and recipe.base_model and recipe.merge_method != "slerp":
            return recipe.base_model
        return None


def _recipe_problems(declared: dict, estimate: MergeEstimate) -> list[str]:
    method = declared.get("method")
    problems: list[str] = []
    equivalent = {method, estimate.method} <= {"linear", "task_arithmetic"}
    if method and method != estimate.method and not equivalent:
        problems.append(
            f"declared merge_method {method}, but the weights fit {estimate.method}"
            f" (relative residual {estimate.residual:.2g})"
        )
        return problems
    weights = {k: v for k, v in declared.get("weights", {}).items() if v is not None}
    if weights and method in ("linear", "ties") and sum(weights.values()):
        total = sum(weights.values())
        weights = {k: v / total for k, v in weights.items()}
    if estimate.method != "slerp":
        for parent, value in weights.items():
            found = estimate.coefficients.get(parent)
            if found is not None and abs(found - value) > COEFFICIENT_TOLERANCE:
                problems.append(
                    f"declared weight {value:.3g} for {parent}, weights say {found:.3g}"
                )
    t = declared.get("t")
    slerp_t = estimate.t if estimate.method == "slerp" else None
    if t is not None and slerp_t is not None and abs(slerp_t - t) > COEFFICIENT_TOLERANCE:
        problems.append(f"declared t {t:.3g}, weights say {slerp_t:.3g}")
    for parent, value in (declared.get("density") or {}).items():
        found = (estimate.density or {}).get(parent)
        if value is not None and found is not None and abs(found - value) > DENSITY_TOLERANCE:
            problems.append(f"declared density {value:.3g} for {parent}, weights say {found:.3g}")
    return problems


def _inferred_links(report: VerifyReport) -> list[ParentLink]:
    links = []
    for parent in report.inferred:
        merge = report.merge if parent.relation == "merge" else None
        links.append(
            ParentLink(
                parent=parent.parent,
                relation=parent.relation,
                declared=False,
                evidence=[
                    Evidence(
                        source="weights",
                        field=METHOD_VERSION,
                        value=f"confidence {parent.confidence:.3f}",
                        declared=False,
                        detail=parent.reason,
                    )
                ],
                merge_method=merge.method if merge else None,
                weight=merge.coefficients.get(parent.parent) if merge else None,
                confidence=parent.confidence,
            )
        )
    return links


def _scalar(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    return None


def _unique(names) -> list[str]:
    seen: list[str] = []
    for name in names:
        if name not in seen:
            seen.append(name)
    return seen


def _rounding(node: Node) -> float:
    """Relative rounding of the stored dtype: what a Δ smaller than cannot be told from 0."""
    fingerprint = node.fingerprint
    if fingerprint is None:
        return 1e-6
    dtypes = {sample.dtype for sample in fingerprint.tensors.values()}
    return 4e-3 if dtypes & {"BF16"} else 5e-4 if dtypes & {"F16"} else 1e-6
