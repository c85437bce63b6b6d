"""The Hub's HTTP endpoints as FakeHub answers them: model and dataset info, the model
list with ``Link`` pagination, tree, refs, commits and ``/resolve`` with ranges, each
with the status codes and ``X-Error-Code`` headers of the real Hub.

``HubApi`` is FakeHub's base class: FakeHub (testkit/hub_server.py) holds the repos, the
server and the fault modes; ``HubApi._route`` answers one request from that state.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode

from testkit.hub_content import Commit, Repo, RepoFile

# ---------------------------------------------------------------------------------------
# HTTP responses
# ---------------------------------------------------------------------------------------


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def json_response(
    payload: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    body = json.dumps(payload).encode()
    return Response(
        status, body, {"Content-Type": "application/json; charset=utf-8", **(headers or {})}
    )


def error_response(
    status: int, message: str, code: str | None = None, headers: dict[str, str] | None = None
) -> Response:
    extra = {"X-Error-Message": message, **({"X-Error-Code": code} if code else {})}
    return json_response({"error": message}, status, {**extra, **(headers or {})})


class HubError(Exception):
    """Raised inside a route to answer with an error response."""

    def __init__(self, response: Response):
        self.response = response


# fmt: off
# Expand properties the Hub accepts (huggingface_hub's ExpandModelProperty_T, and xetEnabled).
_EXPANDABLE = frozenset((
    "author", "baseModels", "cardData", "childrenModelCount", "config", "createdAt", "disabled",
    "downloads", "downloadsAllTime", "evalResults", "gated", "gguf", "inference",
    "inferenceProviderMapping", "lastModified", "library_name", "likes", "mask_token",
    "model-index", "pipeline_tag", "private", "resourceGroup", "safetensors", "sha", "siblings",
    "spaces", "tags", "transformersInfo", "trendingScore", "usedStorage", "widgetData",
    "xetEnabled",
))
# What /api/models/{id} returns without expand (the real one adds widget and inference data).
_INFO_FIELDS = (
    "_id", "id", "private", "pipeline_tag", "library_name", "tags", "downloads", "likes",
    "modelId", "author", "sha", "lastModified", "gated", "disabled", "model-index", "config",
    "cardData", "siblings", "spaces", "createdAt", "safetensors", "gguf", "usedStorage",
)
# Expand properties of datasets (huggingface_hub's ExpandDatasetProperty_T).
_DATASET_EXPANDABLE = frozenset((
    "author", "cardData", "citation", "createdAt", "description", "disabled", "downloads",
    "downloadsAllTime", "gated", "lastModified", "likes", "mainSize", "paperswithcode_id",
    "private", "resourceGroup", "sha", "siblings", "tags", "trendingScore", "usedStorage",
))
# What /api/datasets/{id} returns without expand.
_DATASET_INFO_FIELDS = (
    "_id", "id", "author", "sha", "lastModified", "private", "gated", "disabled", "tags",
    "downloads", "likes", "cardData", "siblings", "createdAt", "usedStorage",
)
# What each item of /api/models holds without expand; full=true adds _LIST_FULL_FIELDS.
_LIST_FIELDS = (
    "_id", "id", "likes", "trendingScore", "private", "downloads", "tags", "pipeline_tag",
    "library_name", "createdAt", "modelId",
)
# fmt: on
_LIST_FULL_FIELDS = ["author", "sha", "lastModified", "gated", "disabled", "siblings"]
_SORT_KEYS = {"downloads", "likes", "createdAt", "lastModified", "trendingScore"}


# ---------------------------------------------------------------------------------------
# The routes
# ---------------------------------------------------------------------------------------


class HubApi:
    """Routes of the emulated Hub over the repos of the FakeHub that inherits it."""

    # Set by FakeHub.__init__.
    page_size: int
    tokens: set[str]
    redirect_lfs: bool
    ignore_ranges: bool
    link_loop: bool
    served_commit: str | None
    listing_body: bytes | None
    endpoint: str
    _lock: threading.RLock
    _repos: dict[str, Repo]
    _datasets: dict[str, Repo]
    _tag_index: dict[str, list[Repo]] | None
    _info_bodies: dict[tuple[Any, ...], bytes]
    _blobs: dict[str, bytes]

    def _repos_of(self, repo_type: str) -> dict[str, Repo]:
        if repo_type == "model":
            return self._repos
        if repo_type == "dataset":
            return self._datasets
        raise ValueError(f"FakeHub serves model and dataset repos, not {repo_type!r}")

    def _route(
        self, method: str, raw_path: str, raw_query: str, handler: BaseHTTPRequestHandler
    ) -> Response:
        if method not in ("GET", "HEAD"):
            return error_response(405, f"{method} is not supported by FakeHub")
        query = parse_qsl(raw_query, keep_blank_values=True)
        segments = [unquote(s) for s in raw_path.strip("/").split("/")]
        if segments[0] == "_cdn":  # signed CDN URL: no auth
            return self._serve_cdn(segments, handler.headers.get("Range"))

        token_ok = self._check_token(handler.headers.get("Authorization"))
        if segments[:2] == ["api", "models"]:
            if len(segments) == 2:
                return self._list_models(query, token_ok)
            return self._repo_api(segments[2:], query, token_ok)
        if segments[:2] == ["api", "datasets"] and len(segments) > 2:
            return self._repo_api(segments[2:], query, token_ok, repo_type="dataset")
        if segments[:2] == ["api", "whoami-v2"]:
            if not token_ok:
                return error_response(401, "Invalid username or password.")
            return json_response({"type": "user", "name": "fake-user", "auth": {}})
        if segments[0] == "datasets" and "resolve" in segments[2:4]:
            return self._resolve(
                segments[1:], handler.headers.get("Range"), token_ok, repo_type="dataset"
            )
        if "resolve" in segments[1:3]:
            return self._resolve(segments, handler.headers.get("Range"), token_ok)
        return error_response(404, "Sorry, we can't find the page you are looking for.")

    def _check_token(self, authorization: str | None) -> bool:
        """True for a valid token, False for none; an invalid token is a 401 everywhere."""
        if authorization is None:
            return False
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip() in self.tokens:
            return True
        raise HubError(error_response(401, "Invalid credentials in Authorization header"))

    # -- repo lookup --------------------------------------------------------------------

    def _visible_repo(self, repo_id: str, token_ok: bool, repo_type: str = "model") -> Repo:
        with self._lock:
            repo = self._repos_of(repo_type).get(repo_id)
        if repo is None or (repo.private and not token_ok):
            if token_ok:
                raise HubError(error_response(404, "Repository not found", "RepoNotFound"))
            raise HubError(error_response(401, "Invalid username or password.", "RepoNotFound"))
        return repo

    def _commit_at(self, repo: Repo, revision: str) -> Commit:
        with self._lock:
            commit = repo.resolve(revision)
        if commit is None:
            raise HubError(error_response(404, f"Invalid rev id: {revision}", "RevisionNotFound"))
        return commit

    def _split_repo_id(
        self, segments: list[str], keywords: set[str], repo_type: str = "model"
    ) -> tuple[str, list[str]]:
        """``org/name/<kw>/...`` or ``name/<kw>/...``: the Hub allows both id forms."""
        with self._lock:
            two_known = "/".join(segments[:2]) in self._repos_of(repo_type)
        if len(segments) >= 2 and segments[1] in keywords and not two_known:
            return segments[0], segments[1:]
        return "/".join(segments[:2]), segments[2:]

    # -- /api/models/{repo_id}/... ------------------------------------------------------

    def _repo_api(
        self,
        segments: list[str],
        query: list[tuple[str, str]],
        token_ok: bool,
        repo_type: str = "model",
    ) -> Response:
        keywords = {"revision", "tree", "refs", "commits"}
        repo_id, rest = self._split_repo_id(segments, keywords, repo_type)
        repo = self._visible_repo(repo_id, token_ok, repo_type)
        action = rest[0] if rest else "info"
        if action == "info" or action == "revision":
            revision = "/".join(rest[1:]) if action == "revision" else "main"
            commit = self._commit_at(repo, revision)
            key = (repo.repo_type, repo.repo_id, commit.sha, tuple(query))
            body = self._info_bodies.get(key)
            if body is None:
                body = json.dumps(self._info_payload(repo, commit, query)).encode()
                self._info_bodies[key] = body
            return Response(200, body, {"Content-Type": "application/json; charset=utf-8"})
        if action == "tree":
            commit = self._commit_at(repo, rest[1] if len(rest) > 1 else "main")
            return self._tree(repo, commit, "/".join(rest[2:]), query)
        if action == "refs":
            return self._refs(repo, query)
        if action == "commits":
            commit = self._commit_at(repo, rest[1] if len(rest) > 1 else "main")
            return self._commits(repo, commit, query)
        return error_response(404, "Sorry, we can't find the page you are looking for.")

    def _info_payload(
        self, repo: Repo, commit: Commit, query: list[tuple[str, str]]
    ) -> dict[str, Any]:
        is_dataset = repo.repo_type == "dataset"
        expand = expand_values(query, _DATASET_EXPANDABLE if is_dataset else _EXPANDABLE)
        blobs = truthy(dict(query).get("blobs"))
        if expand:
            return self._model_json(repo, commit, ["_id", "id", *expand], blobs=blobs)
        fields = _DATASET_INFO_FIELDS if is_dataset else _INFO_FIELDS
        return self._model_json(repo, commit, fields, blobs=blobs)

    def _model_json(
        self, repo: Repo, commit: Commit, fields: Iterable[str], *, blobs: bool = False
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {}
        for name in fields:
            value = self._property(repo, commit, name, blobs=blobs)
            if value is not None:  # the Hub leaves out what a repo does not have
                payload[name] = value
        return payload

    def _property(self, repo: Repo, commit: Commit, name: str, *, blobs: bool) -> Any:
        analysis = commit.analysis
        card = analysis.card or {}
        simple = {
            "_id": repo.object_id,
            "id": repo.repo_id,
            "modelId": repo.repo_id,
            "author": repo.repo_id.split("/")[0] if "/" in repo.repo_id else None,
            "sha": commit.sha,
            "lastModified": commit.date,
            "createdAt": repo.created_at,
            "private": repo.private,
            "gated": repo.gated,
            "disabled": False,
            "downloads": repo.downloads,
            "downloadsAllTime": repo.downloads,
            "likes": repo.likes,
            "trendingScore": 0,
            "pipeline_tag": analysis.pipeline_tag,
            "library_name": analysis.library_name,
            "cardData": analysis.card,
            "config": analysis.config,
            "safetensors": analysis.safetensors,
            "gguf": analysis.gguf,
            "spaces": [],
            "model-index": card.get("model-index"),
            "widgetData": card.get("widget"),
            "xetEnabled": False,
        }
        if name in simple:
            return simple[name]
        if name == "tags":
            return repo.tags_at(commit)
        if name == "siblings":
            return [sibling(path, file, blobs) for path, file in commit.files.items()]
        if name == "usedStorage":
            with self._lock:
                unique = {
                    f.oid: len(f.data) for c in repo.commits.values() for f in c.files.values()
                }
            return sum(unique.values())
        if name == "baseModels":
            if not analysis.base_models:
                return None
            with self._lock:
                known = {
                    b: self._repos[b].object_id for b in analysis.base_models if b in self._repos
                }
            models = [{"_id": known.get(b, ""), "id": b} for b in analysis.base_models]
            return {"relation": analysis.relation, "models": models}
        if name == "childrenModelCount":
            with self._lock:  # from the tag index, as the Hub counts: not a scan per request
                return len(self._tagged(f"base_model:{repo.repo_id}"))
        return None  # accepted by the Hub but not emulated (inference, transformersInfo, ...)

    # -- /api/models (list) -------------------------------------------------------------

    def _list_models(self, query: list[tuple[str, str]], token_ok: bool) -> Response:
        if self.listing_body is not None:  # a broken server's answer, verbatim
            return Response(200, self.listing_body, {"Content-Type": "application/json"})
        params = dict(query)
        expand = expand_values(query)
        if expand and any(params.get(k) for k in ("full", "config", "cardData")):
            return error_response(
                400, '"expand" cannot be used together with "full", "config" or "cardData"'
            )
        filters = [v for k, v in query if k == "filter" and v]
        search = params.get("search", "").lower()
        with self._lock:
            candidates = self._tagged(filters[0]) if filters else list(self._repos.values())
            repos = [r for r in candidates if token_ok or not r.private]
        selected = []
        for repo in repos:
            tags = set(repo.tags_at(repo.head))
            if not all(f in tags for f in filters):
                continue
            if params.get("author") and not repo.repo_id.startswith(params["author"] + "/"):
                continue
            if search and search not in repo.repo_id.lower():
                continue
            if (
                "pipeline_tag" in params
                and repo.head.analysis.pipeline_tag != params["pipeline_tag"]
            ):
                continue
            if "gated" in params and bool(repo.gated) != truthy(params["gated"]):
                continue
            selected.append(repo)
        sort = params.get("sort")
        if sort in _SORT_KEYS:  # the client sends no direction: the Hub sorts descending
            selected.sort(key=lambda r: self._property(r, r.head, sort, blobs=False), reverse=True)

        if expand:
            fields = ["_id", "id", *expand]
        else:
            fields = list(_LIST_FIELDS)
            fields += _LIST_FULL_FIELDS if truthy(params.get("full")) else []
            fields += ["config"] if truthy(params.get("config")) else []
            fields += ["cardData"] if truthy(params.get("cardData")) else []
        limit = int(params["limit"]) if params.get("limit", "").isdigit() else None
        page_size = min(self.page_size, limit) if limit else self.page_size
        page, headers = self._paginate(selected, "/api/models", query, page_size)
        payload = [self._model_json(r, r.head, fields) for r in page]
        return json_response(payload, headers=headers)

    def _tagged(self, tag: str) -> list[Repo]:
        """Model repos whose head carries ``tag`` (call with the lock held)."""
        if self._tag_index is None:
            index: dict[str, list[Repo]] = {}
            for repo in self._repos.values():
                for name in repo.tags_at(repo.head):
                    index.setdefault(name, []).append(repo)
            self._tag_index = index
        return list(self._tag_index.get(tag, []))

    def _paginate(
        self, items: list[Any], path: str, query: list[tuple[str, str]], page_size: int
    ) -> tuple[list[Any], dict[str, str]]:
        """Cursor pagination with a GitHub-style ``Link: <url>; rel="next"`` header."""
        cursor = dict(query).get("cursor")
        try:
            offset = int(base64.urlsafe_b64decode(cursor.encode()).decode()) if cursor else 0
        except ValueError as error:
            raise HubError(error_response(400, "Invalid cursor")) from error
        end = offset + max(1, page_size)
        if end >= len(items) and not self.link_loop:
            return items[offset:], {}
        kept = [(k, v) for k, v in query if k != "cursor"]
        following = offset if self.link_loop else end  # a Link: next that points to itself
        kept.append(("cursor", base64.urlsafe_b64encode(str(following).encode()).decode()))
        url = f"{self.endpoint}{quote(path)}?{urlencode(kept)}"
        return items[offset:end], {"Link": f'<{url}>; rel="next"'}

    # -- tree, refs, commits ------------------------------------------------------------

    def _tree(
        self, repo: Repo, commit: Commit, prefix: str, query: list[tuple[str, str]]
    ) -> Response:
        params = dict(query)
        recursive = truthy(params.get("recursive"))
        directories = {
            "/".join(parts[:i])
            for parts in (p.split("/") for p in commit.files)
            for i in range(1, len(parts))
        }
        prefix = prefix.strip("/")
        if prefix and prefix not in directories:
            raise HubError(
                error_response(404, f"{prefix} does not exist on the revision", "EntryNotFound")
            )
        base = f"{prefix}/" if prefix else ""

        def listed(path: str) -> bool:
            return path.startswith(base) and (recursive or "/" not in path[len(base) :])

        entries: list[dict[str, Any]] = []
        for directory in sorted(d for d in directories if listed(d)):
            inside = sorted(f.oid for p, f in commit.files.items() if p.startswith(directory + "/"))
            oid = hashlib.sha1("\n".join([directory, *inside]).encode()).hexdigest()
            entries.append({"type": "directory", "oid": oid, "size": 0, "path": directory})
        for path, file in commit.files.items():
            if listed(path):
                entry: dict[str, Any] = {"type": "file", "oid": file.oid, "size": len(file.data)}
                if file.is_lfs:
                    entry["lfs"] = {
                        "oid": file.sha256,
                        "size": len(file.data),
                        "pointerSize": file.pointer_size,
                    }
                entry["path"] = path
                entries.append(entry)
        page_size = min(self.page_size, 50) if truthy(params.get("expand")) else self.page_size
        tree_path = f"/api/{repo.repo_type}s/{repo.repo_id}/tree/{commit.sha}" + (
            f"/{prefix}" if prefix else ""
        )
        page, headers = self._paginate(entries, tree_path, query, page_size)
        return json_response(page, headers=headers)

    def _refs(self, repo: Repo, query: list[tuple[str, str]]) -> Response:
        with self._lock:
            branches, tags = dict(repo.branches), dict(repo.tags)

        def refs(names: dict[str, str], kind: str) -> list[dict[str, str]]:
            return [
                {"name": name, "ref": f"refs/{kind}/{name}", "targetCommit": sha}
                for name, sha in sorted(names.items())
            ]

        payload: dict[str, Any] = {
            "branches": refs(branches, "heads"),
            "converts": [],
            "tags": refs(tags, "tags"),
        }
        if truthy(dict(query).get("include_prs")):
            payload["pullRequests"] = []
        return json_response(payload)

    def _commits(self, repo: Repo, commit: Commit, query: list[tuple[str, str]]) -> Response:
        history: list[dict[str, Any]] = []
        current: Commit | None = commit
        while current is not None:
            history.append(
                {
                    "id": current.sha,
                    "title": current.title,
                    "message": "",
                    "authors": [{"user": "fake-user"}],
                    "date": current.date,
                }
            )
            current = repo.commits.get(current.parent) if current.parent else None
        path = f"/api/{repo.repo_type}s/{repo.repo_id}/commits/{commit.sha}"
        page, headers = self._paginate(history, path, query, self.page_size)
        return json_response(page, headers=headers)

    # -- /{repo_id}/resolve/{revision}/{path} -------------------------------------------

    def _resolve(
        self,
        segments: list[str],
        range_header: str | None,
        token_ok: bool,
        repo_type: str = "model",
    ) -> Response:
        repo_id, rest = self._split_repo_id(segments, {"resolve"}, repo_type)
        if len(rest) < 3 or rest[0] != "resolve":
            return error_response(404, "Sorry, we can't find the page you are looking for.")
        revision, filename = rest[1], "/".join(rest[2:])
        repo = self._visible_repo(repo_id, token_ok, repo_type)
        if repo.gated and not token_ok:
            message = (
                f"Access to {repo_type} {repo_id} is restricted. You must have access to it and be "
                "authenticated to access it. Please log in."
            )
            raise HubError(error_response(401, message, "GatedRepo"))
        commit = self._commit_at(repo, revision)
        file = commit.files.get(filename)
        if file is None:
            raise HubError(
                error_response(
                    404, "Entry not found", "EntryNotFound", {"X-Repo-Commit": commit.sha}
                )
            )
        served = self.served_commit or commit.sha
        headers = {"X-Repo-Commit": served, "ETag": file.etag, "Accept-Ranges": "bytes"}
        if file.is_lfs:
            headers |= {"X-Linked-Etag": file.etag, "X-Linked-Size": str(len(file.data))}
        if file.is_lfs and self.redirect_lfs:
            # Another origin (localhost vs 127.0.0.1) so the client treats it as a CDN.
            port = self.endpoint.rsplit(":", 1)[1]
            location = f"http://localhost:{port}/_cdn/{file.sha256}?repo={quote(repo_id)}"
            return Response(302, b"", {**headers, "Location": location})
        content_type = "application/octet-stream" if file.is_lfs else "text/plain; charset=utf-8"
        range_header = None if self.ignore_ranges else range_header
        return ranged(file.data, range_header, {**headers, "Content-Type": content_type})

    def _serve_cdn(self, segments: list[str], range_header: str | None) -> Response:
        with self._lock:
            data = self._blobs.get(segments[1]) if len(segments) == 2 else None
        if data is None:
            return Response(403, b"AccessDenied", {"Content-Type": "application/xml"})
        headers = {"ETag": f'"{segments[1]}"', "Accept-Ranges": "bytes"}
        return ranged(data, range_header, {**headers, "Content-Type": "application/octet-stream"})


def ranged(data: bytes, range_header: str | None, headers: dict[str, str]) -> Response:
    """Serve ``data`` honouring a single ``bytes=`` range (others are ignored, as S3 does)."""
    size = len(data)
    match = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", range_header or "")
    if match is None or match.groups() == ("", ""):
        return Response(200, data, headers)
    first, last = match.groups()
    if first == "":  # suffix range: the last N bytes
        start, end = max(0, size - int(last)), size - 1
    else:
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
        if last and int(last) < start:
            return Response(200, data, headers)  # syntactically invalid: ignore the header
    if start >= size or end < start:
        return Response(416, b"", {**headers, "Content-Range": f"bytes */{size}"})
    return Response(
        206, data[start : end + 1], {**headers, "Content-Range": f"bytes {start}-{end}/{size}"}
    )


def sibling(path: str, file: RepoFile, blobs: bool) -> dict[str, Any]:
    if not blobs:
        return {"rfilename": path}
    sibling: dict[str, Any] = {"rfilename": path, "size": len(file.data), "blobId": file.oid}
    if file.is_lfs:
        sibling["lfs"] = {
            "sha256": file.sha256,
            "size": len(file.data),
            "pointerSize": file.pointer_size,
        }
    return sibling


def expand_values(query: list[tuple[str, str]], allowed: frozenset[str] = _EXPANDABLE) -> list[str]:
    values = [v for k, v in query if k in ("expand", "expand[]") and v]
    unknown = sorted(set(values) - allowed)
    if unknown:
        raise HubError(
            error_response(400, f'"expand" contains unknown properties: {", ".join(unknown)}')
        )
    return list(dict.fromkeys(values))


def truthy(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true", "yes")
