"""``lineage verify``: check a model's declared lineage against its weights.

For one model in the registry (crawled and fingerprinted):
1. each declared parent is confirmed, contradicted or unverifiable (``checks``);
2. a declared merge is re-derived from the parents' weights and compared with its recipe;
3. same-architecture models in the registry are searched for parents the card omits: an
   exact merge of registry models, or, when no declared parent holds, the nearest related
   model that sits closer to the family's root;
4. a single-parent Δ of low rank is reported as a merged LoRA;
5. findings and inferred edges (``declared=False``, evidence ``weights``) are written;
   declared edges are never touched; the whole report is stored (``stored``).
Merge recipes are recovered by the plug-ins in ``estimators``; no method is named here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from lineage.documents.verify import (
    DeclaredMerge,
    DeclaredVerdict,
    FingerprintSummary,
    InferredParent,
    MergeEstimate,
    VerifyFinding,
    VerifyReport,
)
from lineage.fingerprint import METHOD_VERSION
from lineage.records import Evidence, ParentLink
from lineage.thresholds import EXACT_RESIDUAL, SAME_WEIGHTS, Z_RELATED
from lineage.verify import checks
from lineage.verify.aligned import align, matrices
from lineage.verify.errors import NotVerifiableError
from lineage.verify.estimators import MergeProblem, best_fit, estimator_for, estimator_of
from lineage.verify.family import Family, Node
from lineage.verify.lowrank import merged_lora
from lineage.verify.relatedness import relatedness
from lineage.vocabulary import FindingKind, Stage
from registry.database import Registry
from registry.findings import replace_findings
from registry.verifications import save_verification
from registry.weights import replace_inferred_edges

__all__ = ["NotVerifiableError", "verify"]  # NotVerifiableError lives in lineage.verify.errors

MAX_MERGE_PARENTS = 4
STAGE = Stage.VERIFY


def verify(registry: Registry, repo_id: str, *, write: bool = True) -> VerifyReport:
    """Verify ``repo_id``'s head revision; if ``write``, record its findings, inferred edges
    and the whole report (read back with ``latest_verification``)."""
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
            save_verification(session, node.revision, report, method=METHOD_VERSION)
        return report


class _Verification:
    def __init__(self, family: Family, node: Node):
        self.family = family
        self.node = node
        assert node.snapshot is not None and node.revision is not None
        self.snapshot = node.snapshot
        self.report = VerifyReport(repo=node.repo_id, revision=node.revision.sha)

    def run(self) -> VerifyReport:
        fingerprint = self.node.fingerprint
        if fingerprint is not None:
            self.report.fingerprint = FingerprintSummary(
                method=fingerprint.method,
                signature=fingerprint.signature,
                values=fingerprint.value_count,
                bytes_read=fingerprint.bytes_read,
                weight_bytes=fingerprint.weight_bytes,
            )
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
            parent=link.parent,
            status=verdict.status,
            score=verdict.score,
            reason=reason,
            relation=link.relation,
            details={**verdict.details, "candidate": candidate},
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
        if _base_is_endpoint(method) and base is not None:
            parents, base = [base, *parents], None  # e.g. slerp's base_model is its t = 0 end
        declared = DeclaredMerge(
            method=method,
            base=base,
            weights={link.parent: _scalar(link.weight) for link in links if link.parent in parents},
            density={
                link.parent: _scalar(link.density) for link in links if link.parent in parents
            },
            t=next((_scalar(link.t) for link in links if link.t is not None), None),
        )
        self.report.declared_merge = declared
        estimate = self._estimate(parents, base, method)
        if estimate is None:
            return
        self.report.merge = estimate
        for problem in estimator_of(estimate).recipe_problems(declared, estimate):
            self.report.findings.append(
                _finding(
                    FindingKind.RECIPE_MISMATCH,
                    message=problem,
                    details=estimate.to_dict(),
                )
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
        return best_fit(MergeProblem(tensors, tuple(parents), base_index, method))

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
            if result.z >= Z_RELATED and result.score > 0:
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
                            parent=parent,
                            relation="merge",
                            confidence=max(
                                0.0, min(0.999, 1.0 - fit.residual / EXACT_RESIDUAL * 0.5)
                            ),
                            reason=f"this model is an exact {fit.method} merge of"
                            f" {', '.join(chosen)} (relative residual {fit.residual:.2g})",
                            details={
                                "coefficient": round(fit.coefficients.get(parent, math.nan), 4)
                            },
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
        if carries is not None and carries < Z_RELATED:
            return
        confidence = 1.0 - 0.5 * (nearest / runner_up[1]) ** 2 if runner_up else 0.9
        relation = "quantized" if nearest < SAME_WEIGHTS else "finetune"
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
            InferredParent(
                parent=parent,
                relation=relation,
                confidence=max(0.0, min(confidence, 0.999)),
                reason=reason,
            )
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
            self.report.merged_lora = found.model_copy(update={"parent": parent.repo_id})

    # -- 5. findings -----------------------------------------------------------------------

    def _findings(self) -> None:
        findings = self.report.findings
        for verdict in self.report.declared:
            if verdict.status == "contradicted":
                findings.append(
                    _finding(
                        FindingKind.LINEAGE_CONTRADICTION,
                        message=f"card names {verdict.parent} as a parent, but {verdict.reason}",
                        related=verdict.parent,
                        details=verdict.to_dict(),
                    )
                )
            elif verdict.status == "unverifiable":
                findings.append(
                    _finding(
                        FindingKind.UNVERIFIABLE,
                        message=f"{verdict.parent}: {verdict.reason}",
                        related=verdict.parent,
                        details=verdict.to_dict(),
                    )
                )
        for parent in self.report.inferred:
            findings.append(
                _finding(
                    FindingKind.UNDECLARED_PARENT,
                    message=f"weights show {parent.parent} as an undeclared {parent.relation}"
                    f" parent (confidence {parent.confidence:.2f}): {parent.reason}",
                    related=parent.parent,
                    details=parent.to_dict(),
                )
            )
        self._unexplained_merge()
        lora = self.report.merged_lora
        if lora is not None:
            findings.append(
                _finding(
                    FindingKind.MERGED_LORA,
                    message=f"Δ from {lora.parent} has rank {lora.rank} on "
                    f"{', '.join(lora.modules)}: a LoRA merged into the weights",
                    related=lora.parent,
                    details=lora.model_dump(exclude={"parent"}),
                )
            )

    def _unexplained_merge(self) -> None:
        """A declared merge that no fit reproduces, unless the fit is only an estimate."""
        merge = self.report.merge
        if self.report.declared_merge is None or merge is None:
            return
        if merge.exact or self.report.inferred or estimator_of(merge).approximate:
            return
        self.report.findings.append(
            _finding(
                FindingKind.RECIPE_MISMATCH,
                message=f"the declared parents do not reproduce the weights as a {merge.method}"
                f" merge (relative residual {merge.residual:.2g})",
                details=merge.to_dict(),
            )
        )

    def _declared_base(self) -> str | None:
        recipe = self.snapshot.mergekit
        if recipe is not None and recipe.base_model and not _base_is_endpoint(recipe.merge_method):
            return recipe.base_model
        return None


def _base_is_endpoint(method: str | None) -> bool:
    """Whether the declared method merges its base_model as an input (slerp), not a reference."""
    estimator = estimator_for(method)
    return estimator is not None and estimator.base_is_endpoint


def _finding(
    kind: FindingKind, message: str, *, related: str | None = None, details: dict[str, Any]
) -> VerifyFinding:
    """A finding of ``kind``, recorded with the severity its spec gives it."""
    return VerifyFinding(
        kind=kind, message=message, severity=kind.spec.severity, related=related, details=details
    )


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
