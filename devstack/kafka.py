"""A real single-node Apache Kafka (KRaft) broker on 127.0.0.1, fetched from Maven Central.

``start_local_broker`` fetches ``org.apache.kafka:kafka_2.13`` and its runtime dependencies with
Maven into a cache outside git, formats a broker+controller KRaft store under the data directory,
starts it, waits until the broker logs that it has started and its port accepts connections, and
returns the bootstrap address. It is idempotent: a broker already running from the same data
directory is reused. No Kafka client is involved (kafka-python lives in ``ingest`` only), so
nothing prints connection errors while the broker boots.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import orjson

from devstack.errors import LocalBrokerError, MavenFetchError
from devstack.maven import DEFAULT_CACHE, fetch_artifacts, java_binary

LOG4J_VERSION = "2.25.2"
SLF4J_VERSION = "2.0.17"

_LOG4J2 = """status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.stdout.ref = STDOUT
logger.kafka.name = kafka
logger.kafka.level = warn
logger.apache.name = org.apache.kafka
logger.apache.level = warn
logger.state.name = state.change.logger
logger.state.level = warn
logger.started.name = kafka.server.KafkaRaftServer
logger.started.level = info
"""
_STARTED = b"Kafka Server started"


@dataclass(frozen=True, slots=True)
class LocalBrokerConfig:
    """Where and how to run the local broker."""

    data_dir: Path
    port: int = 0  # 0: a free port (kept across restarts)
    version: str = "4.4.0"
    cache_dir: Path = DEFAULT_CACHE
    heap: str = "1g"
    max_message_bytes: int = 8 * 1024 * 1024
    # how long a new group's coordinator waits for more members before its first assignment: 0 here,
    # so tests' groups start at once; Kafka's own default (a production cluster's) is 3000
    initial_rebalance_delay_ms: int = 0


@dataclass(frozen=True, slots=True)
class LocalBroker:
    """A running local broker: bootstrap address, process id and its files."""

    bootstrap: str
    pid: int
    data_dir: Path
    log_file: Path


def fetch_broker(config: LocalBrokerConfig) -> Path:
    """Fetch the broker's jars with Maven (once per Kafka version); return the jar directory.

    Raises:
        LocalBrokerError: if Maven is missing or cannot resolve the artifacts.
    """
    coordinates = [
        f"org.apache.kafka:kafka_2.13:{config.version}",
        # Kafka declares slf4j 1.7; the log4j2 binding needs 2.x
        f"org.slf4j:slf4j-api:{SLF4J_VERSION}",
        f"org.apache.logging.log4j:log4j-slf4j2-impl:{LOG4J_VERSION}",
        f"org.apache.logging.log4j:log4j-core:{LOG4J_VERSION}",
    ]
    try:
        return fetch_artifacts(f"kafka-{config.version}", coordinates, config.cache_dir)
    except MavenFetchError as exc:
        raise LocalBrokerError(str(exc)) from exc


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the JVM does: TIME_WAIT is fine
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:  # a zombie child counts as dead
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().split()[2] != "Z"
    except OSError:
        return True


def _state_file(data_dir: Path) -> Path:
    return data_dir / "broker.json"


def read_local_broker(config: LocalBrokerConfig) -> LocalBroker | None:
    """The broker started from ``config.data_dir`` if it is still running, else None."""
    data_dir = config.data_dir.resolve()
    state = _state_file(data_dir)
    if not state.exists():
        return None
    info = orjson.loads(state.read_bytes())
    if not info.get("pid") or not _alive(int(info["pid"])):
        return None
    return LocalBroker(info["bootstrap"], int(info["pid"]), data_dir, data_dir / "broker.log")


def _properties(data_dir: Path, port: int, controller_port: int, config: LocalBrokerConfig) -> str:
    return "\n".join(
        [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.bootstrap.servers=127.0.0.1:{controller_port}",
            f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
            "controller.listener.names=CONTROLLER",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name=PLAINTEXT",
            f"log.dirs={data_dir / 'logs'}",
            "num.partitions=3",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=5",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            f"group.initial.rebalance.delay.ms={config.initial_rebalance_delay_ms}",
            f"message.max.bytes={config.max_message_bytes}",
            f"replica.fetch.max.bytes={config.max_message_bytes}",
            "auto.create.topics.enable=false",
            "log.retention.hours=-1",
            "",
        ]
    )


def _accepts(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(1.0)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _wait_started(pid: int, port: int, log_file: Path, log_start: int, timeout_s: float) -> None:
    """Wait until the broker logs that it started (after ``log_start``) and its port accepts connections.

    Raises:
        LocalBrokerError: if the process exits or the broker is not up within ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _alive(pid):
            raise LocalBrokerError("the broker process exited", str(log_file))
        with open(log_file, "rb") as fh:
            fh.seek(log_start)
            started = _STARTED in fh.read()
        if started and _accepts(port):
            return
        time.sleep(0.25)
    raise LocalBrokerError(f"the broker did not start within {timeout_s:.0f} s", str(log_file))


def start_local_broker(config: LocalBrokerConfig, timeout_s: float = 90.0) -> LocalBroker:
    """Start (or reuse) the local broker and wait until it is up; return its address.

    Raises:
        LocalBrokerError: if the broker cannot be fetched, formatted or started.
    """
    running = read_local_broker(config)
    if running is not None:
        port = int(running.bootstrap.rsplit(":", 1)[1])
        deadline = time.monotonic() + timeout_s
        while not _accepts(port):
            if time.monotonic() > deadline or not _alive(running.pid):
                raise LocalBrokerError("a broker process runs but accepts no connections", str(running.log_file))
            time.sleep(0.25)
        return running

    try:
        java = java_binary()
    except MavenFetchError as exc:
        raise LocalBrokerError(str(exc)) from exc
    libs = fetch_broker(config)
    data_dir = config.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    state = _state_file(data_dir)
    previous = orjson.loads(state.read_bytes()) if state.exists() else {}
    formatted = (data_dir / "logs" / "meta.properties").exists()

    port = config.port or int(previous.get("port", 0)) or _free_port()
    controller_port = int(previous.get("controller_port", 0)) or _free_port()
    if formatted and not (_port_free(port) and _port_free(controller_port)):
        # the KRaft store remembers its controller endpoint: start afresh on new ports
        shutil.rmtree(data_dir / "logs")
        formatted = False
        port = config.port or _free_port()
        controller_port = _free_port()
    if not _port_free(port):
        raise LocalBrokerError(f"port {port} on 127.0.0.1 is taken; set MHHS_KAFKA_PORT")

    props = data_dir / "server.properties"
    props.write_text(_properties(data_dir, port, controller_port, config), encoding="utf-8")
    log4j = data_dir / "log4j2.properties"
    log4j.write_text(_LOG4J2, encoding="utf-8")
    log_file = data_dir / "broker.log"
    classpath = f"{libs}/*"
    jvm = [
        java,
        f"-Xmx{config.heap}",
        "-Xms256m",
        "-XX:+UseG1GC",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={log4j}",
        "-cp",
        classpath,
    ]

    if not formatted:
        cluster_id = previous.get("cluster_id") or uuid.uuid4().hex[:22]
        fmt = subprocess.run(
            [
                *jvm,
                "kafka.tools.StorageTool",
                "format",
                "-t",
                cluster_id,
                "-c",
                str(props),
                "--standalone",
                "--ignore-formatted",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if fmt.returncode != 0:
            log_file.write_text(fmt.stdout + fmt.stderr, encoding="utf-8")
            raise LocalBrokerError("formatting the KRaft store failed", str(log_file))
        previous["cluster_id"] = cluster_id

    log_start = log_file.stat().st_size if log_file.exists() else 0
    with open(log_file, "ab") as log:
        proc = subprocess.Popen(
            [*jvm, "kafka.Kafka", str(props)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    bootstrap = f"127.0.0.1:{port}"
    state.write_bytes(
        orjson.dumps(
            {
                "bootstrap": bootstrap,
                "pid": proc.pid,
                "port": port,
                "controller_port": controller_port,
                "cluster_id": previous.get("cluster_id"),
            }
        )
    )
    try:
        _wait_started(proc.pid, port, log_file, log_start, timeout_s)
    except LocalBrokerError:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        raise
    return LocalBroker(bootstrap, proc.pid, data_dir, log_file)


def stop_local_broker(config: LocalBrokerConfig, timeout_s: float = 30.0) -> bool:
    """Stop the local broker cleanly (SIGTERM, then SIGKILL); return whether one was running."""
    running = read_local_broker(config)
    if running is None:
        return False
    try:
        os.killpg(running.pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and _alive(running.pid):
        with contextlib.suppress(ChildProcessError):  # reap it when it is our own child
            os.waitpid(running.pid, os.WNOHANG)
        time.sleep(0.2)
    if _alive(running.pid):
        os.killpg(running.pid, signal.SIGKILL)
    return True
