"""Config: defaults <- scale preset <- user config <- ablation variant overrides; validated; hashed."""

from univid.config.load import (  # noqa: F401
    ConfigError,
    apply_overrides,
    config_hash,
    deep_merge,
    load_ablation,
    parse_set,
    resolve,
    validate,
)
from univid.config.jobs import JOBS, job_config, job_configs  # noqa: F401
