"""Submit, cancel, wait and watch: the control plane's side of Outpost's wire contract.

The contract (docs/clients.md, "Submitting from your scheduler"): a JobCommand goes to the jobs
topic keyed by its job_id, with requested_at_ms and a UUIDv7 run_id; a ControlCommand to the
control topic keyed by the run_id; workers write RunEvents to the events topic keyed by the
run_id, and each run ends with exactly one terminal event per attempt (the FAILED of a lost
attempt that runs again carries `retrying` and is not the end).
"""

import enum
import os
import secrets
import time
import uuid

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

try:
    from outpost.v1 import control_pb2, event_pb2, job_pb2
except ImportError as e:  # pragma: no cover - a set-up error, said plainly
    raise ImportError(
        "outpost_client needs the wire contract's Python modules (outpost.v1.*_pb2): run "
        "clients/python/generate, or put the build's proto/python directory on PYTHONPATH"
    ) from e

RunEvent = event_pb2.RunEvent
RunState = event_pb2.RunState
TERMINAL = {
    event_pb2.SUCCEEDED,
    event_pb2.FAILED,
    event_pb2.TIMED_OUT,
    event_pb2.CANCELLED,
    event_pb2.REJECTED,
    event_pb2.EXPIRED,
}


# A worker's NOTICE for a cancel that came after the run ended: "... ended STATE".
ENDED_BEFORE = "cancel ignored: run already ended "


class ExitStatus(enum.IntEnum):
    """The exit statuses of `outpost submit --wait` (and of this package's command line)."""

    SUCCEEDED = 0
    FAILED = 1
    USAGE = 2
    TIMED_OUT = 3
    CANCELLED = 4
    REJECTED = 5
    EXPIRED = 6
    WAIT_TIMED_OUT = 7
    KAFKA = 8
    ALREADY_ENDED = 9


EXIT_STATUS = {
    event_pb2.SUCCEEDED: ExitStatus.SUCCEEDED,
    event_pb2.FAILED: ExitStatus.FAILED,
    event_pb2.TIMED_OUT: ExitStatus.TIMED_OUT,
    event_pb2.CANCELLED: ExitStatus.CANCELLED,
    event_pb2.REJECTED: ExitStatus.REJECTED,
    event_pb2.EXPIRED: ExitStatus.EXPIRED,
}


def state_name(state):
    """'SUCCEEDED' for event_pb2.SUCCEEDED, and so on."""
    return event_pb2.RunState.Name(state)


def exit_status_of(state):
    """The exit status of a run that ended in `state` (a RunState value)."""
    return EXIT_STATUS.get(state, ExitStatus.FAILED)


class WaitTimeout(Exception):
    """The run did not end within the time given; it may still end."""


def uuid7(now_ms=None):
    """A UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then random bits.

    Written here because Python's uuid module has uuid7 only from 3.14.
    """
    ms = int(time.time() * 1000) if now_ms is None else int(now_ms)
    rand = secrets.randbits(74)
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76  # version
    value |= (rand >> 62) << 64  # 12 bits
    value |= 0b10 << 62  # variant
    value |= rand & ((1 << 62) - 1)
    return str(uuid.UUID(int=value))


def _now_ms():
    return int(time.time() * 1000)


class Client:
    """A control plane's connection to one Outpost installation.

    bootstrap_servers: the brokers; prefix: the topics' prefix (topics.prefix of the workers'
    config), or name them with jobs_topic, control_topic and events_topic; kafka: any further
    librdkafka settings (security.protocol, sasl.*, ssl.*), for every client this makes;
    signer: a signing.Signer, to sign every command written (workers with
    security.commands: require refuse unsigned ones).
    """

    def __init__(self, bootstrap_servers, prefix="outpost.", jobs_topic=None, control_topic=None,
                 events_topic=None, kafka=None, signer=None):
        self.jobs_topic = jobs_topic or prefix + "jobs"
        self.control_topic = control_topic or prefix + "control"
        self.events_topic = events_topic or prefix + "events"
        self._kafka = dict(kafka or {})
        self._kafka["bootstrap.servers"] = bootstrap_servers
        self._producer = None
        self._signer = signer
        self._submitted = {}  # run_id -> requested_at_ms, where wait() starts reading

    # -- writing ---------------------------------------------------------------------------

    def _produce(self, topic, key, value, timeout, headers=None):
        if self._producer is None:
            conf = dict(self._kafka)
            conf.setdefault("enable.idempotence", True)
            conf.setdefault("linger.ms", 0)
            self._producer = Producer(conf)
        outcome = {}

        def delivered(err, _msg):
            outcome["err"] = err

        self._producer.produce(topic, key=key.encode(), value=value, headers=headers,
                               on_delivery=delivered)
        self._producer.flush(timeout)
        if "err" not in outcome:
            raise KafkaException(f"the broker did not acknowledge the record to {topic} "
                                 f"within {timeout} s")
        if outcome["err"] is not None:
            raise KafkaException(outcome["err"])

    def submit(self, job_type, args=None, env=None, labels=None, recipe=None, job_id=None,
               run_id=None, pool=None, timeout=None, start_within=None, requested_by=None,
               job_namespace=None, job_name=None, delivery_timeout=30):
        """Writes a JobCommand and returns its run_id once the broker has it.

        timeout and start_within are seconds (the run's time limit, and how long it may wait to
        start). recipe is bytes or text. The message key is job_id (default: job_type).
        """
        cmd = job_pb2.JobCommand()
        cmd.run_id = run_id or uuid7()
        cmd.job_type = job_type
        cmd.job_id = job_id or job_type
        cmd.attempt = 1
        cmd.requested_at_ms = _now_ms()
        if pool:
            cmd.pool = pool
        if recipe is not None:
            cmd.recipe = recipe.encode() if isinstance(recipe, str) else bytes(recipe)
        for target, values in ((cmd.args, args), (cmd.env, env), (cmd.labels, labels)):
            for k, v in (values or {}).items():
                target[k] = str(v)
        if timeout is not None:
            cmd.timeout_ms = int(timeout * 1000)
        if start_within is not None:
            cmd.not_after_ms = cmd.requested_at_ms + int(start_within * 1000)
        if requested_by:
            cmd.requested_by = requested_by
        if job_namespace:
            cmd.lineage.job_namespace = job_namespace
        if job_name:
            cmd.lineage.job_name = job_name
        value = cmd.SerializeToString()
        headers = None
        if self._signer:
            headers = self._signer.headers(value, self.jobs_topic, "job", cmd.run_id,
                                           [cmd.pool] if cmd.pool else None)
        self._produce(self.jobs_topic, cmd.job_id, value, delivery_timeout, headers)
        self._submitted[cmd.run_id] = cmd.requested_at_ms
        return cmd.run_id

    def cancel(self, run_id, reason="", requested_by=None, delivery_timeout=30, pools=None):
        """Asks the worker holding the run to stop it; returns the control command's id.

        pools: signed, the pools it may act in (default: the signer's)."""
        cmd = control_pb2.ControlCommand()
        cmd.command_id = uuid7()
        cmd.issued_at_ms = _now_ms()
        cmd.cancel.run_id = run_id
        cmd.cancel.reason = reason
        cmd.cancel.requested_by = requested_by or os.environ.get("USER", "")
        value = cmd.SerializeToString()
        headers = None
        if self._signer:
            headers = self._signer.headers(value, self.control_topic, "control", cmd.command_id,
                                           pools)
        self._produce(self.control_topic, run_id, value, delivery_timeout, headers)
        self._submitted.setdefault(run_id, cmd.issued_at_ms)
        return cmd.command_id

    # -- reading ---------------------------------------------------------------------------

    def watch(self, run_id=None, since_ms=None, timeout=None):
        """Yields RunEvents as they are written (read_committed), of one run or of all.

        Reads from `since_ms` (Unix milliseconds; default: a minute before this client submitted
        the run, else from now), without joining a consumer group. Stops after `timeout`
        seconds (None: never).
        """
        if since_ms is None:
            since_ms = self._submitted.get(run_id, _now_ms()) - 60_000
        conf = dict(self._kafka)
        conf.update({
            "group.id": "outpost-client-" + uuid7(),  # needed by the client; never joined
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "enable.partition.eof": False,
        })
        consumer = Consumer(conf)
        try:
            meta = consumer.list_topics(self.events_topic, timeout=30)
            topic = meta.topics.get(self.events_topic)
            if topic is None or topic.error is not None or not topic.partitions:
                raise KafkaException(f"no topic {self.events_topic} to read")
            # The ends first: a partition with no record since `since_ms` is read from its end
            # as it was before the query, so nothing written in between is missed.
            ends = {p: consumer.get_watermark_offsets(TopicPartition(self.events_topic, p),
                                                      timeout=30)[1]
                    for p in topic.partitions}
            wanted = [TopicPartition(self.events_topic, p, since_ms) for p in topic.partitions]
            starts = consumer.offsets_for_times(wanted, timeout=30)
            for tp in starts:
                if tp.offset < 0:
                    tp.offset = ends[tp.partition]
            consumer.assign(starts)
            deadline = None if timeout is None else time.monotonic() + timeout
            key = run_id.encode() if run_id else None
            while deadline is None or time.monotonic() < deadline:
                msg = consumer.poll(0.2)
                if msg is None or msg.error() is not None:
                    continue
                if key is not None and msg.key() != key:
                    continue
                event = RunEvent()
                try:
                    event.ParseFromString(msg.value())
                except Exception:  # not a RunEvent: not ours to judge
                    continue
                if run_id is None or event.run_id == run_id:
                    yield event
        finally:
            consumer.close()

    def wait(self, run_id, timeout=None, on_event=None, since_ms=None):
        """Returns the run's terminal RunEvent (for a late cancel, the NOTICE saying how it had
        ended); raises WaitTimeout after `timeout` seconds. on_event sees every event of the run.
        """
        for event in self.watch(run_id, since_ms=since_ms, timeout=timeout):
            if on_event is not None:
                on_event(event)
            if event.state in TERMINAL and not event.retrying:
                return event
            if event.state == event_pb2.NOTICE and event.message.startswith(ENDED_BEFORE):
                return event
        raise WaitTimeout(f"run {run_id} did not end within {timeout} s; it may still end")

    def close(self):
        if self._producer is not None:
            self._producer.flush(30)
            self._producer = None
