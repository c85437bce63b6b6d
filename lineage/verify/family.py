"""The registry as the verifier sees it: nodes with their snapshot, fingerprint and kin.

Reads only; loads each fingerprint once per verification.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, select

from lineage.fingerprint.record import Fingerprint
from lineage.records import ModelSnapshot
from registry import queries
from registry.snapshots import snapshot_from_revision
from registry.tables import Model, Revision
from registry.weights import fingerprinted_heads, load_fingerprint


@dataclass
class Node:
    repo_id: str
    status: str
    revision: Revision | None
    snapshot: ModelSnapshot | None
    fingerprint: Fingerprint | None

    @property
    def created_at(self) -> datetime | None:
        return None if self.snapshot is None else self.snapshot.created_at


class Family:
    def __init__(self, session: Session, method: str):
        self.session = session
        self.method = method
        self._nodes: dict[str, Node] = {}
        self._ancestors: dict[str, list[tuple[str, int]]] = {}
        self._descendants: dict[str, set[str]] = {}

    def node(self, repo_id: str) -> Node:
        if repo_id not in self._nodes:
            self._nodes[repo_id] = self._load(repo_id)
        return self._nodes[repo_id]

    def ancestors(self, repo_id: str) -> list[tuple[str, int]]:
        """Every declared ancestor, nearest first.

        Declared edges only: inferred edges are this stage's own output, and reading them
        back would make one verification depend on the order models were verified in.
        """
        if repo_id not in self._ancestors:
            self._ancestors[repo_id] = queries.ancestors(self.session, repo_id, declared_only=True)
        return self._ancestors[repo_id]

    def descendants(self, repo_id: str) -> set[str]:
        """Every declared descendant."""
        if repo_id not in self._descendants:
            found = queries.descendants(self.session, repo_id, declared_only=True)
            self._descendants[repo_id] = {name for name, _ in found}
        return self._descendants[repo_id]

    def same_architecture(self, fingerprint: Fingerprint) -> list[str]:
        heads = fingerprinted_heads(self.session, fingerprint.signature, self.method)
        return [head.repo_id for head in heads]

    def nearest_fingerprinted_ancestor(
        self, repo_id: str, *, signature: str, exclude: set[str]
    ) -> str | None:
        """The closest ancestor of ``repo_id`` with a fingerprint of the same architecture."""
        for name, _ in self.ancestors(repo_id):
            if name in exclude:
                continue
            fingerprint = self.node(name).fingerprint
            if fingerprint is not None and fingerprint.signature == signature:
                return name
        return None

    def _load(self, repo_id: str) -> Node:
        model = self.session.exec(select(Model).where(Model.repo_id == repo_id)).first()
        if model is None:
            return Node(repo_id, "unknown", None, None, None)
        revision = (
            self.session.get(Revision, model.head_revision_id)
            if model.head_revision_id is not None
            else None
        )
        if revision is None:
            return Node(repo_id, model.status, None, None, None)
        snapshot = snapshot_from_revision(self.session, revision)
        fingerprint = load_fingerprint(self.session, revision.id, self.method)
        return Node(repo_id, model.status, revision, snapshot, fingerprint)
