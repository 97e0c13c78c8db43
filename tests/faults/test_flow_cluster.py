"""FlowProducer on a real 3-primary Redis Cluster: one hash tag for every queue of a flow."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from cluster_servers import LocalCluster, require_binaries
from redis.cluster import RedisCluster

from bullmq_sync import ConfigurationError, Connection, FlowProducer

pytestmark = [pytest.mark.faults, pytest.mark.slow]


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    require_binaries()
    with LocalCluster(primaries=3) as running:
        yield running


def test_cross_queue_flow_with_a_common_hash_tag(cluster: LocalCluster) -> None:
    tag = "{app" + uuid.uuid4().hex[:6] + "}"
    raw = RedisCluster.from_url(cluster.seed_url, decode_responses=True)
    with Connection(cluster.url) as conn, FlowProducer(connection=conn, prefix=tag) as flows:
        node = flows.add({"name": "p", "queueName": "top", "children": [
            {"name": "c", "queueName": "kids"},
            {"name": "m", "queueName": "mid", "children": [{"name": "g", "queueName": "kids"}]},
        ]})
        top = node.job
        assert raw.zscore(f"{tag}:top:waiting-children", top.id) is not None
        assert raw.scard(f"{tag}:top:{top.id}:dependencies") == 2
        assert raw.llen(f"{tag}:kids:wait") == 2
    raw.close()


def test_queues_with_different_tags_are_refused_before_sending(cluster: LocalCluster) -> None:
    with Connection(cluster.url) as conn, FlowProducer(connection=conn) as flows:
        with pytest.raises(ConfigurationError):
            flows.add({"name": "p", "queueName": "top"})  # untagged "bull:top:..."
        with pytest.raises(ConfigurationError):
            flows.add({"name": "p", "queueName": "{a}", "children": [
                {"name": "c", "queueName": "{b}"}]})
