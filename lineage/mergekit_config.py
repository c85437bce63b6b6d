"""Parse mergekit configurations (``mergekit_config.yml`` or the YAML block of a card).

The pydantic models below follow mergekit 0.1.5's own schema (``mergekit/config.py``:
``MergeConfiguration``, ``InputModelDefinition``, ``OutputSliceDefinition``, …) without
importing mergekit, which is only a test dependency. Parameter values are checked for shape
and kept exactly as declared: a scalar, a per-layer gradient list, or ``{filter, value}``
conditions.

>>> recipe = parse_mergekit_config("merge_method: slerp\\nbase_model: org/a\\n"
...     "models: [{model: org/a}, {model: org/b}]\\nparameters: {t: 0.3}\\n")
>>> [entry.reference for entry in recipe.models], merge_parameter({}, recipe.parameters, "t")
(['org/a', 'org/b'], 0.3)
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ValidationError, model_validator

from lineage.bounded import MIB, as_text, load_yaml, type_name
from lineage.errors import MalformedFileError
from lineage.records import CardMetadata, MergeModelEntry, MergeRecipe, ParameterValue

MAX_MERGEKIT_CONFIG_BYTES = 1 * MIB
MERGE_PARAMETERS: tuple[str, ...] = ("weight", "density", "t")

_SCALAR_TYPES = (bool, int, float, str)


def reference_text(value: Any) -> str:
    """A mergekit model reference as one string: ``path[@revision][+lora[@revision]]``.

    mergekit accepts the string form and the mapping form
    ``{model: {path, revision}, lora: ..., override_architecture: ...}``.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "model" in value:
        text = _model_path_text(value["model"])
        if value.get("lora") is not None:
            text += "+" + _model_path_text(value["lora"])
        return text
    raise ValueError(
        f"expected a model reference (a string or {{model: ...}}), got {type_name(value)}"
    )


def _model_path_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("path"), str):
        revision = value.get("revision")
        if revision is None:
            return value["path"]
        if isinstance(revision, str):
            return f"{value['path']}@{revision}"
    raise ValueError(
        f"expected a model path (a string or {{path, revision}}), got {type_name(value)}"
    )


def _check_parameters(value: dict[str, Any]) -> dict[str, Any]:
    for name, setting in value.items():
        if not _is_parameter_setting(setting):
            raise ValueError(
                f"parameter {name!r} must be a scalar, a list of scalars or "
                f"{{filter, value}} conditions, got {type_name(setting)}"
            )
    return value


def _is_parameter_setting(setting: Any) -> bool:
    if _is_scalar_or_gradient(setting) or _is_condition(setting):
        return True
    return isinstance(setting, list) and bool(setting) and all(_is_condition(c) for c in setting)


def _is_scalar_or_gradient(value: Any) -> bool:
    if isinstance(value, _SCALAR_TYPES):
        return True
    return isinstance(value, list) and all(isinstance(item, _SCALAR_TYPES) for item in value)


def _is_condition(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and "value" in value
        and set(value) <= {"value", "filter"}
        and _is_scalar_or_gradient(value["value"])
        and (value.get("filter") is None or isinstance(value["filter"], str))
    )


Reference = Annotated[str, BeforeValidator(reference_text)]
Parameters = Annotated[dict[str, Any], AfterValidator(_check_parameters)]


class InputModel(BaseModel):
    model: Reference
    parameters: Parameters | None = None


class InputSlice(BaseModel):
    model: Reference
    layer_range: tuple[int, int]
    parameters: Parameters | None = None


class OutputSlice(BaseModel):
    sources: list[InputSlice]
    base_model: Reference | None = None
    residual_weight: float | None = None
    parameters: Parameters | None = None


class OutputModule(BaseModel):
    slices: list[OutputSlice] | None = None
    models: list[InputModel] | None = None
    parameters: Parameters | None = None

    @model_validator(mode="after")
    def _one_kind_of_input(self) -> OutputModule:
        if bool(self.slices) == bool(self.models):
            raise ValueError("a module needs exactly one of 'slices' or 'models'")
        return self


class TokenizerConfig(BaseModel):
    source: Reference | None = None
    tokens: dict[str, Any] | None = None
    pad_to_multiple_of: int | None = None


class MergeConfiguration(BaseModel):
    """mergekit's top-level schema; unknown keys are ignored, as mergekit ignores them."""

    merge_method: str
    base_model: Reference | None = None
    models: list[InputModel] | None = None
    slices: list[OutputSlice] | None = None
    modules: dict[str, OutputModule] | None = None
    parameters: Parameters | None = None
    dtype: str | None = None
    out_dtype: str | None = None
    # "union", "base", or a model reference.
    tokenizer_source: Reference | None = None
    tokenizer: TokenizerConfig | None = None
    chat_template: str | None = None

    @model_validator(mode="after")
    def _one_kind_of_input(self) -> MergeConfiguration:
        if sum(1 for inputs in (self.models, self.slices, self.modules) if inputs) != 1:
            raise ValueError("exactly one of 'models', 'slices' or 'modules' must be given")
        if self.tokenizer_source and self.tokenizer:
            raise ValueError("'tokenizer_source' and 'tokenizer' cannot both be given")
        return self


def parse_mergekit_config(
    text: str | bytes, *, repo_id: str | None = None, filename: str = "mergekit_config.yml"
) -> MergeRecipe:
    """Parse and validate a mergekit YAML configuration into a ``MergeRecipe``."""
    text = as_text(text, repo_id=repo_id, filename=filename, max_bytes=MAX_MERGEKIT_CONFIG_BYTES)
    data = load_yaml(text, repo_id=repo_id, filename=filename, what="mergekit config")
    if not isinstance(data, dict):
        raise MalformedFileError(
            f"mergekit config is {type_name(data)}, not a mapping", repo_id=repo_id, file=filename
        )
    try:
        config = MergeConfiguration.model_validate(data)
    except ValidationError as exc:
        raise MalformedFileError(
            f"invalid mergekit config: {_validation_summary(exc)}", repo_id=repo_id, file=filename
        ) from None
    return MergeRecipe(
        merge_method=config.merge_method,
        base_model=config.base_model or _first_slice_base(config),
        models=_input_models(config),
        slices=data.get("slices") if config.slices else None,
        dtype=config.dtype,
        parameters=dict(config.parameters or {}),
        tokenizer_source=config.tokenizer_source,
        source_file=filename,
        raw=data,
    )


def recipe_from_card(card: CardMetadata, *, repo_id: str | None = None) -> MergeRecipe | None:
    """The recipe of the YAML block mergekit writes into a card, or None if there is none.

    Its ``source_file`` is README.md, which is how the lineage code tells it from a
    ``mergekit_config.yml``.
    """
    if not card.mergekit_yaml:
        return None
    return parse_mergekit_config(card.mergekit_yaml, repo_id=repo_id, filename="README.md")


def merge_parameter(
    entry_params: dict[str, Any] | None, global_params: dict[str, Any] | None, name: str
) -> ParameterValue:
    """The declared value of ``name`` (weight, density, t, …) for one model, as written.

    A model's own parameters win over the global ones, as in mergekit.
    """
    for params in (entry_params, global_params):
        if params and params.get(name) is not None:
            return params[name]
    return None


# ----------------------------------------------------------------------------- helpers


def _input_models(config: MergeConfiguration) -> list[MergeModelEntry]:
    """``models[]`` as declared; for slices (and modules), the distinct slice sources in
    order, each with the parameters of its first occurrence."""
    entries: list[MergeModelEntry] = []
    seen: set[str] = set()

    def add(reference: str, parameters: dict[str, Any] | None, *, distinct: bool) -> None:
        if distinct and reference in seen:
            return
        seen.add(reference)
        entries.append(MergeModelEntry(reference=reference, parameters=dict(parameters or {})))

    for model in config.models or []:
        add(model.model, model.parameters, distinct=False)
    for output_slice in config.slices or []:
        for source in output_slice.sources:
            add(source.model, source.parameters, distinct=True)
    for module in (config.modules or {}).values():
        for model in module.models or []:
            add(model.model, model.parameters, distinct=True)
        for output_slice in module.slices or []:
            for source in output_slice.sources:
                add(source.model, source.parameters, distinct=True)
    return entries


def _first_slice_base(config: MergeConfiguration) -> str | None:
    for output_slice in config.slices or []:
        if output_slice.base_model:
            return output_slice.base_model
    return None


def _validation_summary(exc: ValidationError, limit: int = 3) -> str:
    problems = []
    for error in exc.errors()[:limit]:
        where = ".".join(str(part) for part in error["loc"]) or "top level"
        message = str(error["msg"]).removeprefix("Value error, ")
        problems.append(f"{where}: {message}")
    more = exc.error_count() - limit
    if more > 0:
        problems.append(f"and {more} more")
    return "; ".join(problems)
