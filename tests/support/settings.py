"""Settings for tests: fixed keys, test environment, a private data folder."""

from __future__ import annotations

import base64
from pathlib import Path

from infrastructure.settings import Settings, load_settings

ENCRYPTION_KEYS = "test1:" + base64.b64encode(bytes(range(32))).decode()
BLIND_INDEX_KEY = base64.b64encode(bytes(range(32, 64))).decode()


def make_environ(data_dir: Path, **overrides: str) -> dict[str, str]:
    env = {
        "BLOSSOM_ENV": "test",
        "BLOSSOM_DATA_DIR": str(data_dir),
        "ENCRYPTION_KEYS": ENCRYPTION_KEYS,
        "BLIND_INDEX_KEY": BLIND_INDEX_KEY,
        "SHOPIFY_API_KEY": "test-api-key",
        "SHOPIFY_API_SECRET": "test-api-secret",
        "LOG_LEVEL": "INFO",
        "WORKER_HEARTBEAT_SECONDS": "0.2",
        "STALLED_WORKER_SECONDS": "1",
    }
    env.update(overrides)
    return env


def make_settings(data_dir: Path, **overrides: str) -> Settings:
    return load_settings(make_environ(data_dir, **overrides))
