"""Shared fixtures.

Tests run on anyio's asyncio backend only (aiohttp and aiodocker need it). The Docker
fixtures (`docker_engine`, `fake_node_image`, `fake_node`) come from tests/dockerkit.py.
"""

from __future__ import annotations

import pytest

pytest_plugins = ["dockerkit"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
