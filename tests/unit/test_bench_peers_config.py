"""The peers bench's pure parts (no server started): Kafka's server.properties and cluster id, the nats-server
configuration, the pinned versions file, and typed errors for bad input."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from bench.peers.kafka_config import (
    KAFKA_SETTINGS,
    VERSIONS_FILE,
    KafkaBrokerConfig,
    PeerConfigError,
    new_cluster_id,
    parse_properties,
    read_versions,
)
from bench.peers.nats_config import NATS_SETTINGS, NatsServerConfig


def test_kafka_properties_describe_one_kraft_broker_and_controller_on_loopback(tmp_path: Path) -> None:
    config = KafkaBrokerConfig(broker_port=19092, controller_port=19093, log_directory=tmp_path / "logs")
    properties = parse_properties(config.server_properties())
    assert properties["process.roles"] == "broker,controller"
    assert properties["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert properties["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert properties["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19092"
    assert properties["controller.listener.names"] == "CONTROLLER"
    assert properties["log.dirs"] == str(tmp_path / "logs")
    assert properties["offsets.topic.replication.factor"] == "1"
    # Kafka's own durability defaults are what the default setting measures: no forced flush is configured.
    assert not [key for key in properties if key.startswith("log.flush")]


@pytest.mark.parametrize(
    ("broker_port", "controller_port", "log_directory", "message"),
    [
        (0, 19093, Path("/tmp/kafka"), "broker_port"),
        (19092, 70000, Path("/tmp/kafka"), "controller_port"),
        (19092, 19092, Path("/tmp/kafka"), "two ports"),
        (19092, 19093, Path("relative/logs"), "absolute"),
    ],
)
def test_kafka_config_rejects_bad_input(
    broker_port: int, controller_port: int, log_directory: Path, message: str
) -> None:
    with pytest.raises(PeerConfigError, match=message):
        KafkaBrokerConfig(broker_port=broker_port, controller_port=controller_port, log_directory=log_directory)


def test_parse_properties_rejects_a_line_without_a_value() -> None:
    assert parse_properties("# comment\n\na=b=c\n") == {"a": "b=c"}
    with pytest.raises(PeerConfigError, match="key=value"):
        parse_properties("process.roles\n")


def test_cluster_ids_are_sixteen_random_bytes_in_url_safe_base64() -> None:
    first, second = new_cluster_id(), new_cluster_id()
    assert first != second
    assert len(first) == 22
    assert "=" not in first
    assert len(base64.urlsafe_b64decode(first + "==")) == 16


def test_kafka_settings_say_which_one_fsyncs_every_batch() -> None:
    assert [setting.fsync_per_write for setting in KAFKA_SETTINGS] == [False, True]
    assert KAFKA_SETTINGS[1].topic_configs == {"flush.messages": "1"}


def test_the_pinned_versions_are_read_from_versions_env() -> None:
    versions = read_versions(VERSIONS_FILE)
    assert versions["KAFKA_VERSION"].count(".") == 2
    assert versions["NATS_SERVER_MODULE_VERSION"].startswith("v2.")
    assert versions["KAFKA_LOG4J_VERSION"].startswith("2.")


def test_a_versions_file_with_a_bad_line_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "versions.env"
    path.write_text("# pinned\nKAFKA_VERSION=4.3.1\nexport NATS=1\n")
    with pytest.raises(PeerConfigError, match=r"versions.env:3"):
        read_versions(path)


def test_nats_config_listens_on_loopback_with_a_file_store(tmp_path: Path) -> None:
    text = NatsServerConfig(port=14222, store_directory=tmp_path / "js dir").text()
    assert "listen: 127.0.0.1:14222" in text
    assert f'store_dir: "{tmp_path / "js dir"}"' in text
    assert "sync_interval" not in text  # the default: JetStream fsyncs every 2 minutes
    always = NatsServerConfig(port=14222, store_directory=tmp_path, sync_interval="always").text()
    assert "sync_interval: always" in always


def test_nats_settings_say_which_one_fsyncs_every_write() -> None:
    assert [setting.sync_interval for setting in NATS_SETTINGS] == [None, "always"]


@pytest.mark.parametrize(
    ("port", "store_directory", "sync_interval", "message"),
    [
        (-1, Path("/tmp/js"), None, "port"),
        (4222, Path("js"), None, "absolute"),
        (4222, Path("/tmp/js"), "sometimes", "sync_interval"),
    ],
)
def test_nats_config_rejects_bad_input(
    port: int, store_directory: Path, sync_interval: str | None, message: str
) -> None:
    with pytest.raises(PeerConfigError, match=message):
        NatsServerConfig(port=port, store_directory=store_directory, sync_interval=sync_interval)
