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
CARD_FILE = "README.md"

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


class Expert(BaseModel):
    """One expert of a mergekit-moe config (``mergekit/moe/config.py``)."""

    source_model: Reference
    positive_prompts: list[str] | None = None
    negative_prompts: list[str] | None = None
    noise_scale: float | None = None
    residual_scale: float | None = None


class MoEConfiguration(BaseModel):
    """mergekit-moe's schema: a base model's attention and norms, experts' MLPs, a gate."""

    base_model: Reference
    experts: list[Expert]
    gate_mode: str = "hidden"
    dtype: str | None = None
    experts_per_token: int = 2
    shared_experts: list[Expert] | None = None
    architecture: str | None = None


def is_recipe_mapping(data: Any) -> bool:
    """Whether a YAML mapping means to be a mergekit (or mergekit-moe) configuration."""
    return isinstance(data, dict) and ("merge_method" in data or "experts" in data)


def parse_mergekit_config(
    text: str | bytes, *, repo_id: str | None = None, filename: str = "mergekit_config.yml"
) -> MergeRecipe:
    """Parse and validate a mergekit YAML configuration into a ``MergeRecipe``."""
    text = as_text(text, repo_id=repo_id, filename=filename, max_bytes=MAX_MERGEKIT_CONFIG_BYTES)
    data = load_yaml(text, repo_id=repo_id, filename=filename, what="mergekit config")
    return recipe_from_mapping(data, repo_id=repo_id, filename=filename)


def recipe_from_mapping(
    data: Any, *, repo_id: str | None = None, filename: str = "mergekit_config.yml"
) -> MergeRecipe:
    """A validated ``MergeRecipe`` from one YAML document: mergekit, mergekit-moe, or a
    mergekit-mega stage (a mergekit config with a ``name``)."""
    if not isinstance(data, dict):
        raise MalformedFileError(
            f"mergekit config is {type_name(data)}, not a mapping", repo_id=repo_id, file=filename
        )
    name = data.get("name") if isinstance(data.get("name"), str) else None
    config_data = {key: value for key, value in data.items() if key != "name"}
    is_moe = "experts" in config_data and "merge_method" not in config_data
    try:
        if is_moe:
            recipe = _moe_recipe(MoEConfiguration.model_validate(config_data))
        else:
            recipe = _merge_recipe(MergeConfiguration.model_validate(config_data), config_data)
    except ValidationError as exc:
        what = "mergekit-moe config" if is_moe else "mergekit config"
        raise MalformedFileError(
            f"invalid {what}: {_validation_summary(exc)}", repo_id=repo_id, file=filename
        ) from None
    recipe.name = name
    recipe.source_file = filename
    recipe.raw = data
    return recipe


def _merge_recipe(config: MergeConfiguration, data: dict[str, Any]) -> MergeRecipe:
    return MergeRecipe(
        merge_method=config.merge_method,
        base_model=config.base_model or _first_slice_base(config),
        models=_input_models(config),
        slices=data.get("slices") if config.slices else None,
        dtype=config.dtype,
        parameters=dict(config.parameters or {}),
        tokenizer_source=config.tokenizer_source,
    )


def _moe_recipe(config: MoEConfiguration) -> MergeRecipe:
    experts = [*config.experts, *(config.shared_experts or [])]
    return MergeRecipe(
        merge_method="moe",
        base_model=config.base_model,
        models=[MergeModelEntry(reference=expert.source_model) for expert in experts],
        dtype=config.dtype,
        options={
            "gate_mode": config.gate_mode,
            "experts_per_token": config.experts_per_token,
            "experts": len(config.experts),
            "shared_experts": len(config.shared_experts or []),
        },
    )


def recipe_from_card(card: CardMetadata, *, repo_id: str | None = None) -> MergeRecipe | None:
    """The recipe of the YAML block mergekit writes into a card, or None if there is none.

    Its ``source_file`` is README.md, which is how the lineage code tells it from a
    ``mergekit_config.yml``.
    """
    if not card.mergekit_yaml:
        return None
    return parse_mergekit_config(card.mergekit_yaml, repo_id=repo_id, filename=CARD_FILE)


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
    order. Each entry's parameters are those that apply to it below the global ones, with
    mergekit's precedence (``ConfigReader.parameter_sources``): the source's own, then its
    output slice's, then its module's. A value that differs between slices is kept per
    slice: ``[{"layer_range": [0, 16], "value": 0.3}, ...]``."""
    entries: list[MergeModelEntry] = [
        MergeModelEntry(reference=model.model, parameters=dict(model.parameters or {}))
        for model in config.models or []
    ]
    per_slice: dict[str, list[tuple[list[int], dict[str, Any]]]] = {}

    def collect(slices: list[OutputSlice], module: dict[str, Any] | None) -> None:
        for output_slice in slices:
            for source in output_slice.sources:
                settings = {
                    **(module or {}),
                    **(output_slice.parameters or {}),
                    **(source.parameters or {}),
                }
                per_slice.setdefault(source.model, []).append((list(source.layer_range), settings))

    collect(config.slices or [], None)
    for module in (config.modules or {}).values():
        for model in module.models or []:
            settings = {**(module.parameters or {}), **(model.parameters or {})}
            per_slice.setdefault(model.model, []).append(([], settings))
        collect(module.slices or [], module.parameters)
    for reference, occurrences in per_slice.items():
        entries.append(MergeModelEntry(reference=reference, parameters=_fold(occurrences)))
    return entries


def _fold(occurrences: list[tuple[list[int], dict[str, Any]]]) -> dict[str, Any]:
    """One value per parameter where every slice agrees, else the list of per-slice values.

    A slice that leaves a parameter unset takes the global value, so it is listed with
    ``value: None`` when others set it."""
    names = dict.fromkeys(name for _, settings in occurrences for name in settings)
    folded: dict[str, Any] = {}
    for name in names:
        values = [settings.get(name) for _, settings in occurrences]
        if all(value == values[0] for value in values):
            folded[name] = values[0]
        else:
            folded[name] = [
                {"layer_range": layers, "value": value}
                for (layers, _), value in zip(occurrences, values, strict=True)
            ]
    return folded


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
