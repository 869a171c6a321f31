#!/usr/bin/python3
"""The reference executor of bench/run: the floor of what a Python executor needs per job.

What Outpost's users would otherwise run is a Python executor (DataHub's is one). This is the
least such an executor can do, written the way one would with Debian's python3-confluent-kafka
and python3-protobuf:

- a consumer group on the jobs topic (manual commits, auto.offset.reset earliest);
- each JobCommand's program (its template's argv, {name} filled from the command's args) run with
  `subprocess` on a thread pool of --slots threads; stdin /dev/null, stdout and stderr to a pipe;
- a STARTED and a terminal RunEvent (Protobuf, the same fields the bench reads: state, exit code,
  log_tail) to the events topic, keyed by run_id;
- each partition's low watermark (the first offset whose terminal event is not acknowledged)
  committed once the terminal event is acknowledged; the partitions pause while --max-queued
  commands wait.

That is at-least-once, without lineage, run state, cgroups, run directories, deadlines or
admission. With --secrets-file and --log-events it also reads its children's pipes as they write,
masks each secret with plain string replacement and publishes the lines as LOG events, which is
what the benchmark's output-heavy phase compares with.
"""

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from outpost.v1 import event_pb2, job_pb2

TAIL_BYTES = 4096
CHUNK = 65536
COMMIT_INTERVAL = 0.2  # seconds, as Outpost's at-least-once commits


def log(text):
    sys.stderr.write(time.strftime("%Y-%m-%dT%H:%M:%S ") + text + "\n")
    sys.stderr.flush()


class Offsets:
    """Per partition: offsets taken and not yet acknowledged, and the next offset to take. Used
    on the main thread only (delivery callbacks run inside producer.poll there)."""

    def __init__(self):
        self.inflight = {}  # partition -> set of offsets
        self.next = {}  # partition -> one past the highest offset taken
        self.committed = {}

    def take(self, partition, offset):
        self.inflight.setdefault(partition, set()).add(offset)
        self.next[partition] = max(self.next.get(partition, 0), offset + 1)

    def done(self, partition, offset):
        self.inflight.get(partition, set()).discard(offset)

    def pending(self):
        return sum(len(s) for s in self.inflight.values())

    def to_commit(self, topic):
        out = []
        for partition, nxt in self.next.items():
            waiting = self.inflight.get(partition)
            low = min(waiting) if waiting else nxt
            if self.committed.get(partition) != low:
                self.committed[partition] = low
                out.append(TopicPartition(topic, partition, low))
        return out

    def forget(self, partitions):
        for p in partitions:
            self.inflight.pop(p, None)
            self.next.pop(p, None)
            self.committed.pop(p, None)


class Executor:
    def __init__(self, a):
        self.a = a
        self.jobs_topic = a.prefix + "jobs"
        self.events_topic = a.prefix + "events"
        self.templates = {}
        for t in a.template:
            name, _, argv = t.partition("=")
            self.templates[name] = argv.split()
        self.secrets = []
        if a.secrets_file:
            with open(a.secrets_file) as f:
                self.secrets = [line.rstrip("\n") for line in f if line.strip()]
        self.consumer = Consumer({
            "bootstrap.servers": a.bootstrap,
            "group.id": a.group,
            "client.id": a.worker_id,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        })
        self.producer = Producer({
            "bootstrap.servers": a.bootstrap,
            "client.id": a.worker_id,
            "linger.ms": 10,
        })
        self.pool = ThreadPoolExecutor(max_workers=a.slots, thread_name_prefix="slot")
        self.offsets = Offsets()
        self.acked = []  # (partition, offset) acknowledged; appended by delivery callbacks
        self.paused = False
        self.stop = False
        self.last_commit = 0.0

    # -- events ---------------------------------------------------------------------------------

    def event(self, cmd, state, sequence, **fields):
        e = event_pb2.RunEvent(
            event_id=str(uuid.uuid4()), run_id=cmd.run_id, job_id=cmd.job_id,
            job_type=cmd.job_type, attempt=max(1, cmd.attempt), sequence=sequence, state=state,
            event_time_ms=int(time.time() * 1000), worker_id=self.a.worker_id, pool=cmd.pool,
            **fields)
        return e.SerializeToString()

    def publish(self, cmd, state, sequence, on_delivery=None, **fields):
        value = self.event(cmd, state, sequence, **fields)
        while True:
            try:
                self.producer.produce(self.events_topic, key=cmd.run_id, value=value,
                                      on_delivery=on_delivery)
                return
            except BufferError:  # the local queue is full: wait for deliveries
                time.sleep(0.01)

    # -- a run, on a pool thread ----------------------------------------------------------------

    def mask(self, text):
        for s in self.secrets:
            text = text.replace(s, "***")
        return text

    def run(self, cmd, partition, offset):
        def acked(err, _msg):
            if err is not None:
                log(f"terminal event of {cmd.run_id} not delivered: {err}")
            self.acked.append((partition, offset))

        argv = self.templates.get(cmd.job_type)
        if argv is None:
            self.publish(cmd, event_pb2.REJECTED, 1, acked, exit_code=-1,
                         message=f"unknown job_type '{cmd.job_type}'")
            return
        argv = [arg.format(**dict(cmd.args)) for arg in argv]
        started_ms = int(time.time() * 1000)
        self.publish(cmd, event_pb2.STARTED, 1, started_at_ms=started_ms, exit_code=-1)
        t0 = time.monotonic()
        sequence = 1
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT)
        except OSError as e:
            self.publish(cmd, event_pb2.FAILED, 2, acked, exit_code=-1,
                         message=f"cannot start: {e}")
            return
        tail = b""
        output_bytes = 0
        if self.a.log_events:
            partial = b""
            fd = proc.stdout.fileno()
            while True:
                chunk = os.read(fd, CHUNK)
                if not chunk:
                    break
                output_bytes += len(chunk)
                data = partial + chunk
                cut = data.rfind(b"\n")
                if cut < 0:
                    partial = data
                    continue
                partial = data[cut + 1:]
                text = self.mask(data[:cut].decode("utf-8", "replace"))
                sequence += 1
                self.publish(cmd, event_pb2.LOG, sequence, log_lines=text.split("\n"))
                tail = (tail + text.encode() + b"\n")[-TAIL_BYTES:]
            if partial:
                text = self.mask(partial.decode("utf-8", "replace"))
                sequence += 1
                self.publish(cmd, event_pb2.LOG, sequence, log_lines=[text])
                tail = (tail + text.encode())[-TAIL_BYTES:]
            code = proc.wait()
        else:
            out, _ = proc.communicate()
            output_bytes = len(out)
            tail = self.mask(out[-TAIL_BYTES:].decode("utf-8", "replace")).encode()
            code = proc.returncode
        duration_ms = int((time.monotonic() - t0) * 1000)
        state = event_pb2.SUCCEEDED if code == 0 else event_pb2.FAILED
        self.publish(cmd, state, sequence + 1, acked, exit_code=code if code >= 0 else -1,
                     signal=-code if code < 0 else 0, duration_ms=duration_ms,
                     started_at_ms=started_ms, output_bytes=output_bytes,
                     log_tail=tail.decode("utf-8", "replace"))

    # -- the main thread ------------------------------------------------------------------------

    def on_assign(self, consumer, partitions):
        log(f"partitions assigned: {[p.partition for p in partitions]}")

    def on_revoke(self, consumer, partitions):
        self.commit()
        self.offsets.forget([p.partition for p in partitions])

    def take(self, msg):
        if msg.error():
            log(f"consumer error: {msg.error()}")
            return
        cmd = job_pb2.JobCommand()
        try:
            cmd.ParseFromString(msg.value())
        except Exception as e:  # noqa: BLE001 - any decoding error: skip the record
            log(f"undecodable command at {msg.partition()}@{msg.offset()}: {e}")
            return
        self.offsets.take(msg.partition(), msg.offset())
        self.pool.submit(self.run, cmd, msg.partition(), msg.offset())

    def commit(self):
        while self.acked:
            self.offsets.done(*self.acked.pop())
        offsets = self.offsets.to_commit(self.jobs_topic)
        if offsets:
            try:
                self.consumer.commit(offsets=offsets, asynchronous=True)
            except KafkaException as e:
                log(f"commit failed: {e}")

    def backpressure(self):
        while self.acked:
            self.offsets.done(*self.acked.pop())
        pending = self.offsets.pending()
        assignment = self.consumer.assignment()
        if not self.paused and pending >= self.a.max_queued and assignment:
            self.consumer.pause(assignment)
            self.paused = True
        elif self.paused and pending < self.a.max_queued // 2:
            self.consumer.resume(assignment)
            self.paused = False

    def serve(self):
        self.consumer.subscribe([self.jobs_topic], on_assign=self.on_assign,
                                on_revoke=self.on_revoke)
        log(f"reference executor {self.a.worker_id}: {self.a.slots} slots, "
            f"consuming {self.jobs_topic} as group {self.a.group}")
        while not self.stop:
            msg = self.consumer.poll(0.05)
            if msg is not None:
                self.take(msg)
            self.producer.poll(0)
            if time.monotonic() - self.last_commit >= COMMIT_INTERVAL:
                self.commit()
                self.last_commit = time.monotonic()
            self.backpressure()
        log("stopping: waiting for running jobs")
        self.consumer.pause(self.consumer.assignment())
        done = threading.Event()
        threading.Thread(target=lambda: (self.pool.shutdown(wait=True), done.set()),
                         daemon=True).start()
        while not done.is_set():
            self.producer.poll(0.05)
            self.consumer.poll(0)
        self.producer.flush(10)
        self.producer.poll(0)
        self.commit()
        self.consumer.close()
        log("stopped")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--prefix", required=True, help="topics' prefix: PREFIXjobs, PREFIXevents")
    p.add_argument("--group", required=True)
    p.add_argument("--worker-id", default="reference")
    p.add_argument("--slots", type=int, default=4)
    p.add_argument("--max-queued", type=int, default=1000)
    p.add_argument("--template", action="append", default=[],
                   help="NAME=ARGV (space-separated, {arg} placeholders); repeatable")
    p.add_argument("--secrets-file", help="secrets to mask in output, one a line")
    p.add_argument("--log-events", action="store_true",
                   help="read output as it comes and publish it as LOG events")
    a = p.parse_args()
    executor = Executor(a)

    def on_signal(signum, _frame):
        executor.stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    executor.serve()


if __name__ == "__main__":
    main()
