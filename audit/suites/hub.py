"""Suite files from Hub datasets, through the real ``huggingface_hub`` client.

A dataset is pinned to a commit before anything is read: ``dataset_info`` resolves the
revision (``main`` unless given) to its sha, the file list and every download use that sha,
and the suite's source records it (``hf:org/ds@<sha>:file``). Downloads go through
``hf_hub_download`` and so the Hub cache; a file's size is asked first (a dry run) so that a
huge file is refused before it is fetched.

Honours ``HF_ENDPOINT``, ``HF_TOKEN``, ``HF_HUB_OFFLINE`` (then only the Hub cache is read:
the revision's ref, the snapshot's file list and its files) and the cache location.

    fetcher = HubDatasetFetcher(endpoint="http://127.0.0.1:8000", token=False)
    sha = fetcher.resolve("org/prompts", None)
    path = fetcher.download("org/prompts", "data.csv", sha)
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

from huggingface_hub import HfApi, constants, hf_hub_download
from huggingface_hub.file_download import _cache_commit_hash_for_specific_revision, repo_folder_name
from huggingface_hub.utils import build_hf_headers

from audit.errors import SuiteError
from audit.suites.files import HEXPHI_FILE, MAX_FILE_BYTES
from audit.suites.formats import KNOWN_FILE_NAMES
from lineage.sources.hub_errors import map_hub_error
from lineage.sources.retry import RetryPolicy, call_with_retry

T = TypeVar("T")

# Files a dataset keeps its rows in. A .txt file is data only under a published name
# (MaliciousInstruct.txt): most are notes or checksums.
DATA_SUFFIXES = (".csv", ".jsonl", ".json", ".parquet")

COMMIT_SHA = re.compile(r"[0-9a-f]{40}")
MAX_OFFLINE_FILES = 10_000


class HubDatasetFetcher:
    """Resolves, lists and downloads dataset files; every failure is a one-line SuiteError."""

    def __init__(
        self,
        *,
        endpoint: str | None = None,
        token: str | bool | None = None,
        cache_dir: str | Path | None = None,
        offline: bool | None = None,
        policy: RetryPolicy | None = None,
        max_bytes: int = MAX_FILE_BYTES,
    ):
        self.endpoint = (endpoint or constants.ENDPOINT).rstrip("/")
        # None: huggingface_hub finds HF_TOKEN or the saved login itself; False: anonymous.
        self.token = token
        self.cache_dir = Path(cache_dir) if cache_dir else Path(constants.HF_HUB_CACHE)
        self.offline = constants.is_offline_mode() if offline is None else offline
        self.policy = policy or RetryPolicy()
        self.max_bytes = max_bytes
        self.api = HfApi(endpoint=self.endpoint, token=token)
        self.has_token = bool(build_hf_headers(token=token).get("authorization"))

    # -- revision ----------------------------------------------------------------------------
    def resolve(self, repo_id: str, revision: str | None) -> str:
        """The commit sha of ``revision`` (default ``main``)."""
        wanted = revision or "main"
        if COMMIT_SHA.fullmatch(wanted):
            return wanted
        if self.offline:
            ref = self._repo_folder(repo_id) / "refs" / wanted
            if not ref.is_file():
                raise SuiteError(
                    f"HF_HUB_OFFLINE is set and revision '{wanted}' is not in the Hub cache "
                    f"({self.cache_dir})",
                    subject=f"hf:{repo_id}",
                )
            return ref.read_text().strip()
        info = self._call(
            lambda: self.api.dataset_info(
                repo_id, revision=revision, expand=["sha"], timeout=self.policy.timeout_s
            ),
            repo_id,
            what=f"dataset info at {wanted}",
        )
        sha = info.sha or ""
        if not COMMIT_SHA.fullmatch(sha):
            raise SuiteError(f"the Hub gave no commit sha (got {sha!r})", subject=f"hf:{repo_id}")
        # Remember branch -> sha as hf_hub_download does, so an offline run finds it later.
        with contextlib.suppress(OSError):
            _cache_commit_hash_for_specific_revision(str(self._repo_folder(repo_id)), wanted, sha)
        return sha

    # -- files -------------------------------------------------------------------------------
    def list_files(self, repo_id: str, sha: str) -> list[str]:
        if self.offline:
            snapshot = self._repo_folder(repo_id) / "snapshots" / sha
            if not snapshot.is_dir():
                raise SuiteError(
                    f"HF_HUB_OFFLINE is set and commit {sha[:12]} is not in the Hub cache",
                    subject=f"hf:{repo_id}",
                )
            names = sorted(
                p.relative_to(snapshot).as_posix() for p in snapshot.rglob("*") if p.is_file()
            )
            return names[:MAX_OFFLINE_FILES]
        return self._call(
            lambda: self.api.list_repo_files(repo_id, revision=sha, repo_type="dataset"),
            repo_id,
            what="file list",
        )

    def download(self, repo_id: str, filename: str, sha: str) -> Path:
        """The cached path of ``filename`` at ``sha``; a file over ``max_bytes`` is refused."""

        def fetch(dry_run: bool) -> Any:  # a path, or a DryRunFileInfo for a dry run
            return hf_hub_download(
                repo_id,
                filename,
                repo_type="dataset",
                revision=sha,
                cache_dir=self.cache_dir,
                endpoint=self.endpoint,
                token=self.token,
                etag_timeout=self.policy.timeout_s,
                local_files_only=self.offline,
                dry_run=dry_run,
            )

        if not self.offline:
            planned = self._call(lambda: fetch(True), repo_id, what=filename)
            size = planned.file_size
            if size is not None and size > self.max_bytes:
                raise SuiteError(
                    f"{filename} is {size} bytes, over the {self.max_bytes}-byte limit",
                    subject=f"hf:{repo_id}",
                )
        return Path(self._call(lambda: fetch(False), repo_id, what=filename))

    # -- internals ---------------------------------------------------------------------------
    def _repo_folder(self, repo_id: str) -> Path:
        return self.cache_dir / repo_folder_name(repo_id=repo_id, repo_type="dataset")

    def _call(self, call: Callable[[], T], repo_id: str, *, what: str) -> T:
        try:
            return call_with_retry(call, policy=self.policy, what=what, repo_id=repo_id)
        except Exception as error:
            raise self._suite_error(error, repo_id, what) from error

    def _suite_error(self, error: Exception, repo_id: str, what: str) -> SuiteError:
        """The one Hub-error mapping (``lineage.sources.hub_errors``), worded for a dataset."""
        if isinstance(error, SuiteError):
            return error
        mapped = map_hub_error(
            error, repo_id, has_token=self.has_token, what=what, repo_type="dataset"
        )
        return SuiteError(mapped.reason, subject=f"hf:{repo_id}")


def pick_data_files(names: list[str], *, repo_id: str) -> list[str]:
    """The file(s) of a dataset that hold its prompts, when the user named none.

    One data file: that one. HEx-PHI's layout (only ``category_N.csv`` files): all of them.
    Otherwise the one file with a known benchmark name, else an error listing candidates.
    """
    candidates = [
        name
        for name in names
        if (
            PurePosixPath(name).suffix.lower() in DATA_SUFFIXES
            or PurePosixPath(name).name.lower() in KNOWN_FILE_NAMES
        )
        and not PurePosixPath(name).name.startswith(".")
    ]
    if not candidates:
        raise SuiteError(
            f"no {'/'.join(s[1:] for s in DATA_SUFFIXES)} file in the dataset",
            subject=f"hf:{repo_id}",
        )
    if len(candidates) == 1:
        return candidates
    hexphi = [n for n in candidates if HEXPHI_FILE.fullmatch(PurePosixPath(n).name)]
    if len(hexphi) == len(candidates):
        return sorted(hexphi, key=lambda n: int(HEXPHI_FILE.fullmatch(PurePosixPath(n).name)[1]))
    known = [n for n in candidates if PurePosixPath(n).name.lower() in KNOWN_FILE_NAMES]
    if len(known) == 1:
        return known
    shown = ", ".join(candidates[:6]) + (", ..." if len(candidates) > 6 else "")
    raise SuiteError(
        f"several data files ({shown}); name one as hf:{repo_id}:PATH", subject=f"hf:{repo_id}"
    )
