"""outpost_client against the real broker that scripts/test starts (OUTPOST_TEST_BOOTSTRAP) and a
real worker (OUTPOST_BINARY): submit, wait, cancel and watch, the command line's exit statuses,
the wire contract as the C++ CLI writes it, and the example scheduler step.

Run by CTest (Clients.Python) with PYTHONPATH holding clients/python and the build's generated
modules.
"""

import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import uuid

from confluent_kafka import Consumer, TopicPartition

from outpost.v1 import event_pb2, job_pb2
from outpost_client import Client, ExitStatus, WaitTimeout, state_name, uuid7

BOOTSTRAP = os.environ.get("OUTPOST_TEST_BOOTSTRAP", "")
BINARY = os.environ.get("OUTPOST_BINARY", "")
HERE = os.path.dirname(os.path.abspath(__file__))

CONFIG = """\
worker:
  id: {worker_id}
  pool: {pool}
  slots: 4
  work_dir: {dir}/runs
  drain_timeout: 30s
kafka:
  bootstrap_servers: {bootstrap}
topics:
  prefix: {prefix}
http:
  listen: "off"
templates:
  ok:
    argv: [sh, -c, "echo ok {{n}}"]
    allow_shell: true
    params: {{n: {{pattern: "[0-9]+", default: "0"}}}}
    recipe: none
  exit:
    argv: [sh, -c, "echo about to fail; exit {{code}}"]
    allow_shell: true
    params: {{code: {{pattern: "[0-9]+"}}}}
    recipe: none
  sleep:
    argv: [sh, -c, "echo sleeping {{secs}}; sleep {{secs}}; echo woke"]
    allow_shell: true
    params: {{secs: {{pattern: "[0-9]+"}}}}
    recipe: none
"""


class _WorkerFixture(unittest.TestCase):
    """A worker of its own topics and pool for a test class (setUpClass calls start_worker)."""

    @classmethod
    def start_worker(cls, name, extra_yaml=""):
        tag = uuid.uuid4().hex[:10]
        cls.prefix = f"{name}-{tag}."
        cls.pool = f"{name}-{tag}"
        cls.dir = tempfile.mkdtemp(prefix=f"outpost-{name}-")
        cls.config = os.path.join(cls.dir, "outpost.yaml")
        with open(cls.config, "w") as f:
            f.write(CONFIG.format(worker_id=f"{name}-{tag}", pool=cls.pool, dir=cls.dir,
                                  bootstrap=BOOTSTRAP, prefix=cls.prefix))
            f.write(extra_yaml)
        subprocess.run([BINARY, "topics", "--config", cls.config, "--partitions", "2"],
                       check=True, stdout=subprocess.DEVNULL)
        cls.log_path = os.path.join(cls.dir, "worker.log")
        cls.log = open(cls.log_path, "w")
        cls.worker = subprocess.Popen([BINARY, "run", "--config", cls.config],
                                      stdout=cls.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while "partitions assigned" not in cls.worker_log():
            if time.monotonic() > deadline or cls.worker.poll() is not None:
                cls.tearDownClass()
                raise RuntimeError("the worker did not start:\n" + cls.worker_log())
            time.sleep(0.1)

    @classmethod
    def worker_log(cls):
        with open(cls.log_path) as f:
            return f.read()

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "client", None) is not None:
            cls.client.close()
        cls.worker.terminate()
        try:
            cls.worker.wait(60)
        except subprocess.TimeoutExpired:
            cls.worker.kill()
            cls.worker.wait()
        cls.log.close()
        shutil.rmtree(cls.dir, ignore_errors=True)


@unittest.skipUnless(BOOTSTRAP and BINARY, "needs OUTPOST_TEST_BOOTSTRAP and OUTPOST_BINARY "
                     "(scripts/test sets them)")
class ClientAgainstAWorker(_WorkerFixture):
    @classmethod
    def setUpClass(cls):
        cls.start_worker("py-client")
        cls.client = Client(BOOTSTRAP, prefix=cls.prefix)

    def cli(self, *args):
        env = dict(os.environ)
        return subprocess.run([sys.executable, "-m", "outpost_client", "-b", BOOTSTRAP,
                               "--prefix", self.prefix, *args],
                              capture_output=True, text=True, env=env, timeout=120)

    def test_submit_and_wait_gives_the_terminal_event(self):
        seen = []
        run_id = self.client.submit("ok", args={"n": 7}, pool=self.pool)
        end = self.client.wait(run_id, timeout=60, on_event=lambda e: seen.append(e.state))
        self.assertEqual(state_name(end.state), "SUCCEEDED", end.message)
        self.assertIn("ok 7", end.log_tail)
        self.assertIn(event_pb2.STARTED, seen)

    def test_a_failed_run_is_reported_failed(self):
        run_id = self.client.submit("exit", args={"code": 3}, pool=self.pool)
        end = self.client.wait(run_id, timeout=60)
        self.assertEqual(state_name(end.state), "FAILED")
        self.assertEqual(end.exit_code, 3)

    def test_cancel_ends_a_running_run_cancelled(self):
        run_id = self.client.submit("sleep", args={"secs": 60}, pool=self.pool)
        for event in self.client.watch(run_id, timeout=60):
            if event.state == event_pb2.STARTED:
                break
        else:
            self.fail("the run did not start")
        self.client.cancel(run_id, reason="test", requested_by="py-test")
        end = self.client.wait(run_id, timeout=60)
        self.assertEqual(state_name(end.state), "CANCELLED")
        self.assertEqual(end.cancelled_by, "py-test")

    def test_wait_times_out_for_a_run_nobody_takes(self):
        run_id = self.client.submit("ok", pool="nobody-" + self.pool)
        with self.assertRaises(WaitTimeout):
            self.client.wait(run_id, timeout=2)

    def test_commands_are_keyed_timed_and_identified_as_the_cpp_cli_writes_them(self):
        before = int(time.time() * 1000)
        run_id = self.client.submit("ok", job_id="nightly-orders", pool=self.pool)
        self.assertEqual(uuid.UUID(run_id).version, 7)
        consumer = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": "py-test-" + uuid7(),
                             "enable.auto.commit": False})
        try:
            found = None
            meta = consumer.list_topics(self.prefix + "jobs", timeout=30)
            consumer.assign([TopicPartition(self.prefix + "jobs", p, 0)
                             for p in meta.topics[self.prefix + "jobs"].partitions])
            deadline = time.monotonic() + 30
            while found is None and time.monotonic() < deadline:
                msg = consumer.poll(0.5)
                if msg is None or msg.error():
                    continue
                cmd = job_pb2.JobCommand.FromString(msg.value())
                if cmd.run_id == run_id:
                    found = (msg.key(), cmd)
        finally:
            consumer.close()
        self.assertIsNotNone(found)
        key, cmd = found
        self.assertEqual(key, b"nightly-orders")
        self.assertEqual(cmd.job_id, "nightly-orders")
        self.assertGreaterEqual(cmd.requested_at_ms, before)
        self.assertEqual(cmd.attempt, 1)

    def test_the_command_line_exits_with_how_the_run_ended(self):
        ok = self.cli("submit", "-t", "ok", "--pool", self.pool, "--wait")
        self.assertEqual(ok.returncode, ExitStatus.SUCCEEDED, ok.stderr)
        self.assertIn("SUCCEEDED", ok.stderr)
        failed = self.cli("submit", "-t", "exit", "-a", "code=4", "--pool", self.pool, "--wait")
        self.assertEqual(failed.returncode, ExitStatus.FAILED, failed.stderr)
        self.assertIn("about to fail", failed.stderr)
        rejected = self.cli("submit", "-t", "nope", "--pool", self.pool, "--wait")
        self.assertEqual(rejected.returncode, ExitStatus.REJECTED, rejected.stderr)
        logs = self.cli("submit", "-t", "sleep", "-a", "secs=1", "--pool", self.pool, "--wait",
                        "--follow-logs")
        self.assertEqual(logs.returncode, 0, logs.stderr)
        self.assertIn("sleeping 1\nwoke\n", logs.stdout)
        nobody = self.cli("submit", "-t", "ok", "--pool", "nobody", "--wait", "--wait-timeout", "2s")
        self.assertEqual(nobody.returncode, ExitStatus.WAIT_TIMED_OUT, nobody.stderr)

    def test_the_example_scheduler_step_fails_the_step_on_a_failed_run(self):
        env = dict(os.environ, OUTPOST_BOOTSTRAP=BOOTSTRAP, OUTPOST_TOPICS_PREFIX=self.prefix)
        script = os.path.join(HERE, "..", "examples", "scheduler_step.py")
        # The example submits without a pool: this worker's pool runs it (no pool: any pool).
        ok = subprocess.run([sys.executable, script, "ok"], env=env, capture_output=True,
                            text=True, timeout=120)
        self.assertEqual(ok.returncode, 0, ok.stdout + ok.stderr)
        self.assertIn("ended SUCCEEDED", ok.stdout)
        failed = subprocess.run([sys.executable, script, "exit", "code=2"], env=env,
                                capture_output=True, text=True, timeout=120)
        self.assertEqual(failed.returncode, ExitStatus.FAILED, failed.stdout + failed.stderr)
        self.assertIn("ended FAILED", failed.stdout)
        self.assertIn("about to fail", failed.stderr)


@unittest.skipUnless(BOOTSTRAP and BINARY, "needs OUTPOST_TEST_BOOTSTRAP and OUTPOST_BINARY "
                     "(scripts/test sets them)")
class SignedCommandsAgainstAWorker(_WorkerFixture):
    """A worker with security.commands: require runs what the Python client signs, with a key
    made by `outpost keygen` (Ed25519) or by Python (P-256), and refuses what it does not."""

    @classmethod
    def setUpClass(cls):
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from outpost_client.signing import Signer

        cls.keys = tempfile.mkdtemp(prefix="outpost-py-keys-")
        jwks_path = os.path.join(cls.keys, "jwks.json")
        cls.ed_key = os.path.join(cls.keys, "ed.pem")
        subprocess.run([BINARY, "keygen", "--kid", "ed", "--private-key", cls.ed_key, "--jwks",
                        jwks_path], check=True, capture_output=True)
        p256 = ec.generate_private_key(ec.SECP256R1())
        cls.p256_pem = p256.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption())
        numbers = p256.public_key().public_numbers()
        with open(jwks_path) as f:
            jwks = json.load(f)
        jwks["keys"].append({"kty": "EC", "crv": "P-256", "kid": "p256", "use": "sig",
                             "alg": "ES256", "x": _b64url(numbers.x.to_bytes(32, "big")),
                             "y": _b64url(numbers.y.to_bytes(32, "big"))})
        with open(jwks_path, "w") as f:
            json.dump(jwks, f)
        cls.start_worker("py-signed",
                         f"security:\n  commands: require\n  trusted_keys: {jwks_path}\n")
        cls.client = Client(BOOTSTRAP, prefix=cls.prefix,
                            signer=Signer(cls.ed_key, "ed", pools=[cls.pool]))
        cls.signed = cls.client

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        shutil.rmtree(cls.keys, ignore_errors=True)

    def test_a_signed_command_runs_and_an_unsigned_one_is_rejected(self):
        end = self.signed.wait(self.signed.submit("ok", pool=self.pool), timeout=60)
        self.assertEqual(state_name(end.state), "SUCCEEDED", end.message)
        plain = Client(BOOTSTRAP, prefix=self.prefix)
        try:
            end = plain.wait(plain.submit("ok", pool=self.pool), timeout=60)
        finally:
            plain.close()
        self.assertEqual(state_name(end.state), "REJECTED")
        self.assertIn("signature: unsigned", end.message)

    def test_a_p256_key_signs_es256(self):
        from outpost_client.signing import Signer
        client = Client(BOOTSTRAP, prefix=self.prefix, signer=Signer(self.p256_pem, "p256"))
        try:
            end = client.wait(client.submit("ok", pool=self.pool), timeout=60)
        finally:
            client.close()
        self.assertEqual(state_name(end.state), "SUCCEEDED", end.message)

    def test_a_signed_cancel_cancels(self):
        run_id = self.signed.submit("sleep", args={"secs": 60}, pool=self.pool)
        for event in self.signed.watch(run_id, timeout=60):
            if event.state == event_pb2.STARTED:
                break
        else:
            self.fail("the run did not start")
        self.signed.cancel(run_id, reason="test", requested_by="py-test")
        end = self.signed.wait(run_id, timeout=60)
        self.assertEqual(state_name(end.state), "CANCELLED", end.message)

    def test_the_command_line_signs(self):
        out = subprocess.run([sys.executable, "-m", "outpost_client", "-b", BOOTSTRAP, "--prefix",
                              self.prefix, "submit", "-t", "ok", "--pool", self.pool,
                              "--sign-key", self.ed_key, "--kid", "ed", "--wait"],
                             capture_output=True, text=True, timeout=120)
        self.assertEqual(out.returncode, ExitStatus.SUCCEEDED, out.stderr)


def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


if __name__ == "__main__":
    unittest.main()
