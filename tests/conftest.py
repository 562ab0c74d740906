"""Shared fixtures.

Tests run on anyio's asyncio backend only (aiohttp and aiodocker need it). The Docker
fixtures (`docker_engine`, `fake_node_image`, `fake_node`) come from tests/dockerkit.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

pytest_plugins = ["dockerkit"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP client session for the tests' own servers on 127.0.0.1."""
    async with aiohttp.ClientSession() as client:
        yield client
