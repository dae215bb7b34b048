import os

import pytest

# No model hub in tests: offline everywhere (otherwise hub retries add ~50 s per miss).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


# The smoke config and one built model, shared by the model and generation tests (modules may override `cfg`).
@pytest.fixture(scope="module")
def cfg():
    from univid.config import resolve

    return resolve({})


@pytest.fixture(scope="module")
def comp(cfg):
    from univid.models.builder import build

    return build(cfg)
