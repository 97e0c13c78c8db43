"""Interop fixtures: one Node BullMQ driver per major version for the whole session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from nodebullmq import NodeBullMQ, require_node


@pytest.fixture(scope="session")
def node6(redis_url: str) -> Iterator[NodeBullMQ]:
    """Node BullMQ 6.7.0 (npm, pinned in package.json) on the session Redis."""
    require_node(6)
    with NodeBullMQ(redis_url, major=6) as node:
        yield node


@pytest.fixture(scope="session")
def node5(redis_url: str) -> Iterator[NodeBullMQ]:
    """Node BullMQ 5.81.5 on the session Redis."""
    require_node(5)
    with NodeBullMQ(redis_url, major=5) as node:
        yield node
