"""Evaluate one model on its suites: cached run, else cached responses re-judged, else generate.

The expensive part is generation, so the runner asks the registry first. A run with the
same key (revision, suite hash, generation key, judge id and version) is reused as is; a
run that differs only by judge lends its responses; only then is the model loaded. The
chat format is resolved from tokenizers alone, before any weights are read, because the
template is part of the key.
"""

from __future__ import annotations

import functools
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from audit.backends import GenerationBackend, resolve_backend
from audit.errors import ModelLoadError
from audit.generation import (
    ADAPTER_SAFETENSORS,
    MODEL_FILE_PATTERNS,
    PICKLE_FILE_PATTERNS,
    TOKENIZER_FILE_PATTERNS,
    ChatFormat,
    GenerationSettings,
    LoadedModel,
    TemplateCandidate,
    format_prompts,
    generation_record,
    has_safetensors_weights,
    load_tokenizer,
    resolve_chat_format,
)
from audit.judges.base import Judge
from audit.plan import AuditNode
from audit.records import EVENT_VERDICTS, Suite
from audit.statistics import wilson_interval
from audit.suites.identity import check_distinct
from lineage.errors import LineageError
from lineage.sources.base import Source
from registry.database import Registry
from registry.evaluations import (
    RunKey,
    RunRecord,
    StoredSample,
    find_responses,
    find_run,
    run_samples,
    save_run,
)

ADAPTER_FILE_PATTERNS: tuple[str, ...] = (
    "adapter_config.json",
    ADAPTER_SAFETENSORS,
    "tokenizer*",
    "special_tokens_map.json",
    "*.jinja",
)


@dataclass
class EvaluatedRun:
    """One model's run on one suite, with its samples aligned to the suite's prompt order."""

    repo_id: str
    sha: str
    suite: Suite
    judge_id: str
    judge_version: str
    generation: dict
    run_id: int
    reused: str  # "run" (cached), "responses" (re-judged) or "" (generated now)
    samples: list[StoredSample]

    @property
    def events(self) -> list[bool]:
        bad = EVENT_VERDICTS[self.suite.kind]
        return [sample.verdict in bad for sample in self.samples]

    @property
    def parse_failed(self) -> list[bool]:
        return [sample.parse_failed for sample in self.samples]

    @property
    def n(self) -> int:
        return len(self.samples)

    @property
    def event_count(self) -> int:
        return sum(self.events)

    @property
    def rate(self) -> float:
        return self.event_count / self.n if self.n else 0.0

    @property
    def ci(self) -> tuple[float, float]:
        return wilson_interval(self.event_count, self.n)

    @property
    def degenerate(self) -> int:
        return sum(sample.verdict == "degenerate" for sample in self.samples)

    @property
    def parse_failures(self) -> int:
        return sum(self.parse_failed)

    @property
    def rate_if_unparsed_are_events(self) -> float:
        """Judge sensitivity: the rate with every unparseable judge output counted as bad."""
        flags = [e or f for e, f in zip(self.events, self.parse_failed, strict=True)]
        return sum(flags) / self.n if self.n else 0.0

    def by_category(self) -> dict[str, list[int]]:
        totals: Counter[str] = Counter(sample.category for sample in self.samples)
        events: Counter[str] = Counter(
            s.category for s, e in zip(self.samples, self.events, strict=True) if e
        )
        return {category: [events[category], totals[category]] for category in sorted(totals)}


def run_record(
    run: EvaluatedRun, *, judge_model: str | None, environment: dict, seconds: float
) -> RunRecord:
    """What the registry stores of ``run``: its aggregate beside every sample."""
    low, high = run.ci
    return RunRecord(
        suite_name=run.suite.name,
        suite_kind=run.suite.kind,
        suite_source=run.suite.source,
        suite_aliases=list(run.suite.aliases),
        generation=run.generation,
        judge_model=judge_model,
        n=run.n,
        events=run.event_count,
        degenerate=run.degenerate,
        parse_failures=run.parse_failures,
        rate=run.rate,
        ci_low=low,
        ci_high=high,
        by_category=run.by_category(),
        environment=environment,
        seconds=seconds,
        samples=run.samples,
    )


@dataclass
class NodeEvaluator:
    """Evaluates plan nodes with one source, one setting and one judge."""

    registry: Registry
    source: Source
    settings: GenerationSettings
    judge: Judge
    progress: Callable[[str], None] = lambda message: None
    _folders: dict[tuple[str, str, tuple[str, ...]], Path] = field(default_factory=dict)
    _parent_tokenizers: dict[tuple[str, str], Any] = field(default_factory=dict)

    @functools.cached_property
    def backend(self) -> GenerationBackend:
        """The generation backend the settings name (``audit.backends``), built once."""
        return resolve_backend(self.settings.backend)

    def evaluate(self, node: AuditNode, suites: Sequence[Suite]) -> dict[str, EvaluatedRun]:
        """Run (or reuse) every suite on ``node``; results keyed by suite name, which must be
        unique (``audit.suites.identity.distinct_suites``)."""
        check_distinct(suites)
        chat = self._chat_format(node)
        dtype = self.settings.resolved_dtype(self.settings.resolved_device())
        generation_key, generation = generation_record(
            self.settings, chat, dtype, self.backend.key_fields()
        )
        loaded: LoadedModel | None = None
        results: dict[str, EvaluatedRun] = {}
        try:
            for suite in suites:
                key = self._run_key(node, suite, generation_key)
                cached = self._cached(node, suite, key, generation)
                if cached is not None:
                    results[suite.name] = cached
                    continue
                started = time.perf_counter()
                with self.registry.session(write=False) as session:
                    found = find_responses(session, key)
                reused = "responses" if found is not None else ""
                if found is None:
                    if loaded is None:
                        self.progress(f"loading {node.repo_id}@{node.sha[:10]}")
                        loaded = self._load(node)
                    self.progress(f"generating {node.repo_id} on {suite.name} ({len(suite)})")
                    texts = format_prompts(
                        loaded.tokenizer,
                        chat,
                        [p.prompt for p in suite.prompts],
                        self.settings.system_prompt,
                    )
                    answers = self.backend.generate(loaded, texts, self.settings)
                    environment = self.backend.environment(loaded, self.settings)
                else:  # re-judged: the responses, and where they were generated, are the old run's
                    responses, environment = found
                    answers = [sample.response for sample in responses]
                results[suite.name] = self._judge_and_save(
                    node, suite, key, generation, answers, environment, started, reused
                )
        finally:
            del loaded  # free the weights before the next model is loaded
        return results

    def missing(self, node: AuditNode, suites: Sequence[Suite]) -> tuple[Suite, ...]:
        """The suites ``node`` has no complete run of under these settings and judge: what
        ``evaluate`` would have to generate or re-judge. Reads the tokenizer (for the chat
        format, part of the key), never the weights."""
        chat = self._chat_format(node)
        dtype = self.settings.resolved_dtype(self.settings.resolved_device())
        generation_key, generation = generation_record(
            self.settings, chat, dtype, self.backend.key_fields()
        )
        return tuple(
            suite
            for suite in suites
            if self._cached(node, suite, self._run_key(node, suite, generation_key), generation)
            is None
        )

    def config_folder(self, node: AuditNode) -> Path:
        """A folder with the config.json of the model ``node`` runs: its own, or for an
        adapter its base's (what ``choose_backend`` reads)."""
        if node.relation == "adapter":
            base, base_sha = self._adapter_base(node)
            return self._folder(base, base_sha, TOKENIZER_FILE_PATTERNS)
        return self._folder(node.repo_id, node.sha, TOKENIZER_FILE_PATTERNS)

    # -- steps ------------------------------------------------------------------------------

    def _run_key(self, node: AuditNode, suite: Suite, generation_key: str) -> RunKey:
        return RunKey(
            node.revision_id,
            suite.content_hash,
            generation_key,
            self.judge.info.id,
            self.judge.info.version,
        )

    def _cached(
        self, node: AuditNode, suite: Suite, key: RunKey, generation: dict
    ) -> EvaluatedRun | None:
        with self.registry.session(write=False) as session:
            run = find_run(session, key)
            if run is None:
                return None
            samples = run_samples(session, run)
            run_id = int(run.id or 0)
        if len(samples) != len(suite):
            return None  # a run cut short by a crash is redone, never trusted
        # The hash leaves ids out (an index column is not content): show this suite's ids.
        samples = [
            replace(sample, prompt_id=prompt.id)
            for sample, prompt in zip(samples, suite.prompts, strict=True)
        ]
        return EvaluatedRun(
            node.repo_id,
            node.sha,
            suite,
            key.judge_id,
            key.judge_version,
            generation,
            run_id,
            "run",
            samples,
        )

    def _judge_and_save(
        self,
        node: AuditNode,
        suite: Suite,
        key: RunKey,
        generation: dict,
        answers: list[str],
        environment: dict,
        started: float,
        reused: str,
    ) -> EvaluatedRun:
        self.progress(f"judging {node.repo_id} on {suite.name} with {self.judge.info.id}")
        judgements = self.judge.judge(suite.kind, list(zip(suite.prompts, answers, strict=True)))
        samples = [
            StoredSample(
                prompt.id,
                prompt.category,
                prompt.prompt,
                answer,
                judgement.verdict,
                judgement.judge_output,
                judgement.parse_failed,
            )
            for prompt, answer, judgement in zip(suite.prompts, answers, judgements, strict=True)
        ]
        run = EvaluatedRun(
            node.repo_id,
            node.sha,
            suite,
            key.judge_id,
            key.judge_version,
            generation,
            0,
            reused,
            samples,
        )
        record = run_record(
            run,
            judge_model=self.judge.info.model,
            environment=environment,
            seconds=round(time.perf_counter() - started, 3),
        )
        with self.registry.session() as session:
            run.run_id = int(save_run(session, key, record).id or 0)
        return run

    # -- models and templates ---------------------------------------------------------------

    def _folder(self, repo_id: str, sha: str, patterns: Sequence[str]) -> Path:
        key = (repo_id, sha, tuple(patterns))
        if key not in self._folders:
            try:
                self._folders[key] = self.source.model_folder(repo_id, sha, patterns)
            except LineageError as error:
                raise ModelLoadError(error.reason, subject=repo_id) from error
        return self._folders[key]

    def _chat_format(self, node: AuditNode) -> ChatFormat:
        folder = self._tokenizer_folder(node)
        tokenizer = load_tokenizer(
            folder, node.repo_id, trust_remote_code=self.settings.trust_remote_code
        )
        # A generator: ancestors' tokenizers are fetched only for a model without a template.
        return resolve_chat_format(tokenizer, self._template_candidates(node))

    def _template_candidates(self, node: AuditNode) -> Iterator[TemplateCandidate]:
        for repo_id, sha in node.template_parents:
            if (repo_id, sha) not in self._parent_tokenizers:
                try:
                    parent_folder = self._folder(repo_id, sha, TOKENIZER_FILE_PATTERNS)
                    loaded = load_tokenizer(parent_folder, repo_id)
                except ModelLoadError:
                    loaded = None  # a parent without a usable tokenizer lends no template
                self._parent_tokenizers[(repo_id, sha)] = loaded
            parent_tokenizer = self._parent_tokenizers[(repo_id, sha)]
            if parent_tokenizer is not None:
                yield TemplateCandidate(f"{repo_id}@{sha}", parent_tokenizer)

    def _tokenizer_folder(self, node: AuditNode) -> Path:
        if node.relation == "adapter":
            folder = self._folder(node.repo_id, node.sha, ADAPTER_FILE_PATTERNS)
            if (folder / "tokenizer_config.json").is_file():
                return folder
            base, base_sha = self._adapter_base(node)
            return self._folder(base, base_sha, TOKENIZER_FILE_PATTERNS)
        return self._folder(node.repo_id, node.sha, TOKENIZER_FILE_PATTERNS)

    def _adapter_base(self, node: AuditNode) -> tuple[str, str]:
        """(repo, sha) of an adapter's declared base, from its recorded ancestors."""
        shas = dict(node.template_parents)
        if node.adapter_base is None or node.adapter_base not in shas:
            raise ModelLoadError(
                "is an adapter whose base model was not crawled; crawl the base first",
                subject=node.repo_id,
            )
        return node.adapter_base, shas[node.adapter_base]

    def _weights_folder(
        self,
        repo_id: str,
        sha: str,
        patterns: Sequence[str],
        has_safetensors: Callable[[Path], bool],
    ) -> Path:
        """The files to load ``repo_id`` from: safetensors ones first; pickle checkpoints
        are fetched only with --allow-pickle, and only for a revision without safetensors,
        so what is evaluated is what was crawled and fingerprinted."""
        folder = self._folder(repo_id, sha, patterns)
        if self.settings.allow_pickle and not has_safetensors(folder):
            folder = self._folder(repo_id, sha, (*patterns, *PICKLE_FILE_PATTERNS))
        return folder

    def _load(self, node: AuditNode) -> LoadedModel:
        if node.relation == "adapter":
            base, base_sha = self._adapter_base(node)
            return self.backend.load(
                self._weights_folder(base, base_sha, MODEL_FILE_PATTERNS, has_safetensors_weights),
                self.settings,
                label=node.repo_id,
                adapter_folder=self._weights_folder(
                    node.repo_id,
                    node.sha,
                    ADAPTER_FILE_PATTERNS,
                    lambda folder: (folder / ADAPTER_SAFETENSORS).is_file(),
                ),
            )
        return self.backend.load(
            self._weights_folder(
                node.repo_id, node.sha, MODEL_FILE_PATTERNS, has_safetensors_weights
            ),
            self.settings,
            label=node.repo_id,
        )
