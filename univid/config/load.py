"""Load, merge, validate and hash configs. Errors are one line and name the offending key."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import jsonschema
import yaml

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parents[1]
SCHEMA_PATH = REPO_ROOT / "workflows" / "schemas" / "config.schema.yaml"
SCALES = ("smoke", "toy", "paper")


class ConfigError(ValueError):
    """A config problem; the message is one line naming the key and what was expected."""


def _read_yaml(path: Path, what: str) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} '{path}': file not found (expected a YAML file)")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0]
        raise ConfigError(f"{what} '{path}': not valid YAML ({first})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{what} '{path}': expected a mapping at top level, got {type(data).__name__}")
    return data


def deep_merge(base: dict, override: dict) -> dict:
    """Return base with override merged in; nested mappings merge, everything else replaces."""
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _schema() -> dict:
    return yaml.safe_load(SCHEMA_PATH.read_text())


def _error_line(err: jsonschema.ValidationError) -> str:
    where = ".".join(str(p) for p in err.absolute_path) or "<top level>"
    if err.validator == "additionalProperties":
        allowed = sorted((err.schema.get("properties") or {}).keys())
        extra = sorted(set(err.instance) - set(allowed))
        if err.schema.get("patternProperties"):
            extra = [k for k in extra if not any(__import__("re").match(p, k) for p in err.schema["patternProperties"])]
        key = f"{where}.{extra[0]}" if where != "<top level>" else extra[0]
        hint = f"; expected one of: {', '.join(allowed)}" if allowed else ""
        return f"config key '{key}' is not known{hint}"
    if err.validator == "enum":
        return f"config key '{where}' = {err.instance!r}: expected one of {', '.join(map(repr, err.validator_value))}"
    if err.validator == "type":
        return f"config key '{where}' = {err.instance!r}: expected type {err.validator_value}"
    if err.validator in ("oneOf", "anyOf") and err.schema.get("description"):
        return f"config key '{where}' = {err.instance!r}: expected {err.schema['description']}"
    if err.validator == "required":
        return f"config key '{where}': {err.message}"
    return f"config key '{where}' = {err.instance!r}: {err.message}"


def validate(cfg: dict) -> dict:
    """Validate against workflows/schemas/config.schema.yaml; raise ConfigError naming the first bad key."""
    validator = jsonschema.Draft202012Validator(_schema())
    errors = sorted(validator.iter_errors(cfg), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    if errors:
        raise ConfigError(_error_line(errors[0]))
    return cfg


def _preset_chain(scale: str) -> list[dict]:
    """The scale's preset and the presets it inherits from (`inherit: smoke` in toy.yaml), base first."""
    chain, seen = [], []
    while scale is not None:
        if scale in seen:
            raise ConfigError(f"scale preset {scale!r}: inherits from itself (expected a chain ending at a preset "
                              f"without `inherit`)")
        seen.append(scale)
        preset = _read_yaml(PACKAGE_DIR / "scales" / f"{scale}.yaml", f"scale preset {scale!r}")
        scale = preset.pop("inherit", None)
        chain.insert(0, preset)
    return chain


def resolve(user_cfg: dict | None = None, overrides: dict | None = None) -> dict:
    """defaults <- scales/<scale>.yaml <- user config <- overrides, validated at each layer that a user writes."""
    user_cfg = copy.deepcopy(user_cfg or {})
    validate(user_cfg)
    if overrides:
        validate(overrides)
    scale = (overrides or {}).get("scale") or user_cfg.get("scale") or "smoke"
    if scale not in SCALES:
        raise ConfigError(f"config key 'scale' = {scale!r}: expected one of {', '.join(map(repr, SCALES))}")
    cfg = _read_yaml(PACKAGE_DIR / "defaults.yaml", "defaults")
    for preset in _preset_chain(scale):
        cfg = deep_merge(cfg, preset)
    cfg = deep_merge(cfg, user_cfg)
    cfg = deep_merge(cfg, overrides or {})
    cfg["scale"] = scale
    return validate(cfg)


def load_user_config(path: str | Path | None) -> dict:
    if path is None:
        return {}
    return _read_yaml(Path(path), "config file")


def parse_set(items: list[str] | None) -> dict:
    """`--set a.b=1 --set scale=paper` -> nested dict, values parsed as YAML scalars."""
    out: dict = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. --set tma.schedule=cosine")
        key, raw = item.split("=", 1)
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = yaml.safe_load(raw)
    return out


def apply_overrides(cfg: dict, overrides: dict) -> dict:
    return validate(deep_merge(cfg, overrides))


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def config_hash(obj: Any, length: int = 12) -> str:
    """Content hash of a (resolved) config: the key under which its outputs are stored."""
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()[:length]


def load_ablation(path: str | Path) -> dict:
    """An ablation file: name, table, title, variants = [{name, label, overrides}]; overrides are validated.
    A top-level `overrides` applies to every variant (under the variant's own), e.g. the table's generation track."""
    path = Path(path)
    data = _read_yaml(path, "ablation file")
    for key in ("name", "table", "variants"):
        if key not in data:
            raise ConfigError(f"ablation file '{path}': missing key '{key}' (expected name, table, title, variants)")
    shared = data.get("overrides") or {}
    if not isinstance(shared, dict):
        raise ConfigError(f"ablation file '{path}': overrides of type {type(shared).__name__} (expected a mapping of "
                          f"config keys applied to every variant)")
    names = set()
    for i, variant in enumerate(data["variants"]):
        if not isinstance(variant, dict) or "name" not in variant or "label" not in variant:
            raise ConfigError(f"ablation file '{path}': variants[{i}] needs 'name' and 'label'")
        unknown = set(variant) - {"name", "label", "overrides", "published"}
        if unknown:
            raise ConfigError(f"ablation file '{path}': variants[{i}] has unknown key(s) {', '.join(sorted(unknown))} "
                              f"(expected name, label, overrides, published)")
        if variant["name"] in names:
            raise ConfigError(f"ablation file '{path}': variant name {variant['name']!r} appears twice")
        names.add(variant["name"])
        variant["overrides"] = deep_merge(shared, variant.get("overrides") or {})
        try:
            validate(variant["overrides"])
        except ConfigError as exc:
            raise ConfigError(f"ablation file '{path}' variant {variant['name']!r}: {exc}") from None
    return data
