"""Every plug-in point is a PluginRegistry, and every error says its own exit code (issue 12)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx2
import pytest
import typer
from huggingface_hub import errors as hf_errors

from audit.errors import AuditError, GenerationError, JudgeError, SuiteError
from audit.judges import JUDGE_MODELS, JUDGES, JudgeSpec, get_judge
from audit.suites import BUILTIN_SUITES, SUITE_FORMATS, get_format, load_builtin
from lineage.cli import app as cli_app
from lineage.errors import (
    EXIT_PROBLEMS,
    EXIT_USAGE,
    FingerprintUnavailableError,
    InvalidReferenceError,
    LineageAuditError,
    LineageError,
    MalformedFileError,
    RepoNotFoundError,
    UnknownFormatError,
)
from lineage.exporters import EXPORTERS, get_exporter
from lineage.plugins import PluginRegistry, UnknownPluginError
from lineage.sources import SOURCES, HubSource, LocalSource, source_for
from lineage.sources.hub_errors import map_hub_error
from registry.errors import RegistryDamagedError, RegistryError

ROOT = Path(__file__).resolve().parent.parent


# -- the registries ------------------------------------------------------------------------
def test_every_plug_in_point_is_a_plugin_registry():
    for registry in (JUDGES, SUITE_FORMATS, BUILTIN_SUITES, EXPORTERS, SOURCES):
        assert isinstance(registry, PluginRegistry)
        assert list(registry) == list(registry.names()) and len(registry) > 0
        assert all(registry[name] is plugin for name, plugin in registry.items())


def test_one_spec_per_judge_says_which_model_it_needs():
    assert all(isinstance(spec, JudgeSpec) for spec in JUDGES.values())
    assert not JUDGES["refusal"].needs_model and JUDGES["wildguard"].needs_model
    # JUDGE_MODELS is derived from the specs, never written twice.
    assert {s.model: s.max_new_tokens for s in JUDGES.values() if s.model} == JUDGE_MODELS
    for name, spec in JUDGES.items():
        assert get_judge(name).info.model == spec.model


def test_an_unknown_judge_suggests_the_closest():
    with pytest.raises(JudgeError) as caught:
        get_judge("wildgaurd")
    message = str(caught.value)
    assert message.startswith("judge 'wildgaurd': unknown judge; known judges: ")
    assert message.endswith("did you mean 'wildguard'?") and caught.value.exit_code == EXIT_USAGE


def test_unknown_suite_formats_and_built_ins_suggest_the_closest():
    with pytest.raises(SuiteError, match=r"unknown suite format.*did you mean 'advbench'"):
        get_format("advbnch")
    assert get_format(" XSTest ") is SUITE_FORMATS["xstest"]
    with pytest.raises(SuiteError, match=r"no built-in suite.*did you mean 'harmful'"):
        load_builtin("harmfull")


def test_an_unknown_export_format_is_a_plugin_error_suggesting_the_closest():
    with pytest.raises(UnknownFormatError) as caught:
        get_exporter("grapml")
    assert isinstance(caught.value, UnknownPluginError) and isinstance(caught.value, ValueError)
    assert "did you mean 'graphml'?" in str(caught.value) and caught.value.format == "grapml"
    assert get_exporter(" JSON ") is EXPORTERS["json"]


# -- sources ---------------------------------------------------------------------------------
def _model_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "org" / "model"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    return folder


def test_each_source_says_which_specs_it_claims(tmp_path):
    folder = _model_folder(tmp_path)
    assert LocalSource.claims(str(folder)) and LocalSource.claims("./org/model")
    assert not LocalSource.claims("org/model")  # org/name is always a Hub repo
    assert HubSource.claims("org/model") and not HubSource.claims(str(folder))
    assert SOURCES.names() == ("local", "hub")


def test_the_source_is_the_one_that_claims_every_spec(tmp_path):
    folder = _model_folder(tmp_path)
    source, repo_ids = source_for([str(folder)])
    assert isinstance(source, LocalSource) and repo_ids == ["org/model"]
    source, repo_ids = source_for(["org/model"])
    assert isinstance(source, HubSource) and repo_ids == ["org/model"]
    with pytest.raises(InvalidReferenceError, match="local model folders or Hub repo ids"):
        source_for(["org/model", str(folder)])
    with pytest.raises(InvalidReferenceError, match="invalid repo id"):
        source_for(["org/na me"])


# -- the CLI lists the registries ---------------------------------------------------------
def _option_help(command: str, option: str) -> str:
    click_app = typer.main.get_command(cli_app.app)
    (param,) = [p for p in click_app.commands[command].params if p.name == option]
    return param.help or ""


def test_cli_help_lists_the_registered_names():
    judge_help = _option_help("audit", "judge")
    assert all(name in judge_help for name in JUDGES)
    suite_help = _option_help("audit", "suite")
    assert all(name in suite_help for name in SUITE_FORMATS if name != "generic")
    assert all(name in suite_help for name in BUILTIN_SUITES)
    format_help = _option_help("graph", "format")
    assert all(name in format_help for name in EXPORTERS)


# -- errors --------------------------------------------------------------------------------
def test_every_stage_error_derives_from_the_root_and_says_its_exit_code():
    for base in (LineageError, AuditError, RegistryError, UnknownPluginError):
        assert issubclass(base, LineageAuditError)
    usage = (InvalidReferenceError, UnknownFormatError, SuiteError, JudgeError, RegistryError)
    assert all(cls.exit_code == EXIT_USAGE for cls in usage)
    assert RegistryDamagedError.exit_code == EXIT_USAGE  # inherited from its stage's base
    problems = (MalformedFileError, RepoNotFoundError, GenerationError, LineageError)
    assert all(cls.exit_code == EXIT_PROBLEMS for cls in problems)


def test_fingerprint_unavailable_error_lives_in_lineage_errors():
    from lineage.fingerprint import FingerprintUnavailableError as from_package
    from lineage.fingerprint.read import FingerprintUnavailableError as from_reader

    assert from_package is from_reader is FingerprintUnavailableError


def test_the_cli_exits_with_the_code_its_error_class_says(monkeypatch, capsys):
    class Odd(LineageError):
        exit_code = 7

    def failing_app() -> None:
        raise Odd("something odd", repo_id="org/model")

    monkeypatch.setattr(cli_app, "app", failing_app)
    with pytest.raises(SystemExit) as exited:
        cli_app.main()
    assert exited.value.code == 7
    assert "org/model: something odd" in capsys.readouterr().err


def test_an_unknown_judge_exits_2_in_one_line():
    result = subprocess.run(
        [sys.executable, "-m", "lineage", "audit", "org/model", "--judge", "wildgaurd"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "LINEAGE_DB": "sqlite://"},
    )
    assert result.returncode == EXIT_USAGE, result.stderr
    assert "did you mean 'wildguard'?" in result.stderr and "Traceback" not in result.stderr


# -- one Hub-error mapping -----------------------------------------------------------------
def _response(status: int) -> httpx2.Response:
    return httpx2.Response(status, request=httpx2.Request("GET", "http://hub.invalid/x"))


def test_one_hub_error_mapping_worded_for_models_and_datasets():
    gated = hf_errors.GatedRepoError("gated", response=_response(403))
    model = map_hub_error(gated, "org/m", has_token=False, what="config.json")
    dataset = map_hub_error(gated, "org/d", has_token=False, what="a.csv", repo_type="dataset")
    assert str(model) == (
        "org/m: gated repo: accept its terms on the Hub and set HF_TOKEN (config.json)"
    )
    assert dataset.reason.startswith("gated dataset: accept its terms")
    assert type(dataset) is type(model)  # the same error; only the wording differs
    missing = hf_errors.RepositoryNotFoundError("missing", response=_response(404))
    mapped = map_hub_error(missing, "org/d", has_token=False, what="x", repo_type="dataset")
    assert mapped.reason == "dataset not found on the Hub (or private: set HF_TOKEN)"
    already = RepoNotFoundError("gone", repo_id="org/m")
    assert map_hub_error(already, "org/m", has_token=False, what="x") is already


def test_a_wrapped_download_failure_reports_its_cause():
    wrapped = hf_errors.LocalEntryNotFoundError("cannot find the file")
    wrapped.__cause__ = hf_errors.GatedRepoError("gated", response=_response(403))
    mapped = map_hub_error(wrapped, "org/d", has_token=False, what="a.csv", repo_type="dataset")
    assert mapped.reason.startswith("gated dataset")
    bare = hf_errors.LocalEntryNotFoundError("cannot find the file")
    mapped = map_hub_error(bare, "org/d", has_token=False, what="a.csv", repo_type="dataset")
    assert mapped.reason == "no file a.csv in the dataset"
