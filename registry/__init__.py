"""The lineage registry: the one shared state every stage reads and writes.

>>> from registry import Registry, record_snapshot, ancestors
>>> registry = Registry.open()                       # $LINEAGE_DB, else the per-user SQLite file
>>> with registry.session() as session:
...     record_snapshot(session, snapshot)
>>> with registry.session(write=False) as session:
...     ancestors(session, "org/merged-model")

Keyed by ``(repo_id, revision sha)``; SQLite by default, PostgreSQL for teams.
"""

from registry.crawls import finish_crawl, log_event, start_crawl
from registry.database import (
    MIGRATIONS,
    SCHEMA_VERSION,
    Registry,
    RegistryInfo,
    default_url,
    mask_url,
)
from registry.errors import (
    MigrationError,
    NotARegistryError,
    RegistryBusyError,
    RegistryError,
    RegistryUnavailableError,
    SchemaTooNewError,
)
from registry.queries import (
    EdgeRow,
    ModelRow,
    NodeRow,
    ancestors,
    crawl_log,
    descendants,
    get_model,
    known_revisions,
    lineage_subgraph,
    list_crawls,
    list_models,
    model_details,
    revision_history,
)
from registry.snapshots import recorded_revision, snapshot_from_revision
from registry.store import record_failure, record_inferred_edge, record_snapshot
from registry.tables import (
    Crawl,
    CrawlEvent,
    Edge,
    EdgeEvidence,
    Model,
    Revision,
    SchemaInfo,
)

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "Crawl",
    "CrawlEvent",
    "Edge",
    "EdgeEvidence",
    "EdgeRow",
    "MigrationError",
    "Model",
    "ModelRow",
    "NodeRow",
    "NotARegistryError",
    "Registry",
    "RegistryBusyError",
    "RegistryError",
    "RegistryInfo",
    "RegistryUnavailableError",
    "Revision",
    "SchemaInfo",
    "SchemaTooNewError",
    "ancestors",
    "crawl_log",
    "default_url",
    "descendants",
    "finish_crawl",
    "get_model",
    "known_revisions",
    "lineage_subgraph",
    "list_crawls",
    "list_models",
    "log_event",
    "mask_url",
    "model_details",
    "record_failure",
    "record_inferred_edge",
    "record_snapshot",
    "recorded_revision",
    "revision_history",
    "snapshot_from_revision",
    "start_crawl",
]
