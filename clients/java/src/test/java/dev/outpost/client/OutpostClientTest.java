package dev.outpost.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.outpost.v1.Event.RunEvent;
import dev.outpost.v1.Event.RunState;
import dev.outpost.v1.Job.JobCommand;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.UUID;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * OutpostClient against the broker scripts/test starts (OUTPOST_TEST_BOOTSTRAP) and a real worker
 * (OUTPOST_BINARY): submit, wait, cancel and watch, and the wire contract as the C++ CLI writes
 * it.
 */
class OutpostClientTest {
  static final String BOOTSTRAP = System.getenv().getOrDefault("OUTPOST_TEST_BOOTSTRAP", "");
  static final String BINARY = System.getenv().getOrDefault("OUTPOST_BINARY", "");
  static final String TAG = UUID.randomUUID().toString().substring(0, 10);
  static final String PREFIX = "java-client-" + TAG + ".";
  static final String POOL = "java-" + TAG;
  static Path dir;
  static TestWorker worker;
  static OutpostClient client;

  static String config() {
    return String.join("\n",
        "worker:", "  id: java-" + TAG, "  pool: " + POOL, "  slots: 4",
        "  work_dir: " + dir.resolve("runs"), "  drain_timeout: 30s",
        "kafka:", "  bootstrap_servers: " + BOOTSTRAP,
        "topics:", "  prefix: " + PREFIX,
        "http:", "  listen: \"off\"",
        "templates:",
        "  ok:", "    argv: [sh, -c, \"echo ok {n}\"]", "    allow_shell: true",
        "    params: {n: {pattern: \"[0-9]+\", default: \"0\"}}", "    recipe: none",
        "  exit:", "    argv: [sh, -c, \"echo about to fail; exit {code}\"]",
        "    allow_shell: true", "    params: {code: {pattern: \"[0-9]+\"}}", "    recipe: none",
        "  sleep:", "    argv: [sh, -c, \"echo sleeping {secs}; sleep {secs}; echo woke\"]",
        "    allow_shell: true", "    params: {secs: {pattern: \"[0-9]+\"}}", "    recipe: none",
        "");
  }

  @BeforeAll
  static void startAWorker() throws Exception {
    Assumptions.assumeTrue(!BOOTSTRAP.isEmpty() && !BINARY.isEmpty(),
        "needs OUTPOST_TEST_BOOTSTRAP and OUTPOST_BINARY (scripts/test sets them)");
    worker = new TestWorker("java-client");
    dir = worker.dir;
    worker.start(BINARY, config(), 2);
    client = new OutpostClient(BOOTSTRAP, PREFIX, Map.of());
  }

  @AfterAll
  static void stopTheWorker() throws Exception {
    if (client != null) client.close();
    if (worker != null) worker.close();
  }

  @Test
  void submitAndWaitGiveTheTerminalEvent() throws Exception {
    List<RunState> seen = new ArrayList<>();
    String runId = client.submit(SubmitRequest.of("ok").arg("n", "7").pool(POOL));
    RunEvent end = client.wait(runId, Duration.ofSeconds(60), e -> seen.add(e.getState()));
    assertEquals(RunState.SUCCEEDED, end.getState(), end.getMessage());
    assertTrue(end.getLogTail().contains("ok 7"));
    assertTrue(seen.contains(RunState.STARTED));
    assertEquals(ExitStatus.SUCCEEDED, ExitStatus.of(end.getState()));
  }

  @Test
  void aFailedRunIsReportedFailed() throws Exception {
    String runId = client.submit(SubmitRequest.of("exit").arg("code", "3").pool(POOL));
    RunEvent end = client.wait(runId, Duration.ofSeconds(60), null);
    assertEquals(RunState.FAILED, end.getState());
    assertEquals(3, end.getExitCode());
    assertEquals(1, ExitStatus.of(end.getState()).code);
  }

  @Test
  void cancelEndsARunningRunCancelled() throws Exception {
    String runId = client.submit(SubmitRequest.of("sleep").arg("secs", "60").pool(POOL));
    boolean started = client.watch(runId, null, Duration.ofSeconds(60),
        e -> e.getState() != RunState.STARTED);
    assertTrue(started, "the run started");
    client.cancel(runId, "test", "java-test");
    RunEvent end = client.wait(runId, Duration.ofSeconds(60), null);
    assertEquals(RunState.CANCELLED, end.getState());
    assertEquals("java-test", end.getCancelledBy());
    // A second cancel: the run has ended, and the worker's NOTICE says how.
    java.time.Instant again = java.time.Instant.now();
    client.cancel(runId, "again", "java-test");
    RunEvent notice = client.wait(runId, again, Duration.ofSeconds(60), null);
    assertEquals(RunState.NOTICE, notice.getState(), notice.toString());
    assertEquals(OutpostClient.ENDED_BEFORE + "CANCELLED", notice.getMessage());
  }

  @Test
  void waitTimesOutForARunNobodyTakes() {
    String runId = client.submit(SubmitRequest.of("ok").pool("nobody-" + POOL));
    assertThrows(WaitTimeoutException.class,
        () -> client.wait(runId, Duration.ofSeconds(2), null));
  }

  @Test
  void commandsAreKeyedTimedAndIdentifiedAsTheCppCliWritesThem() throws Exception {
    long before = System.currentTimeMillis();
    String runId = client.submit(SubmitRequest.of("ok").jobId("nightly-orders").pool(POOL));
    assertEquals(7, UUID.fromString(runId).version());
    Properties p = new Properties();
    p.put("bootstrap.servers", BOOTSTRAP);
    try (KafkaConsumer<String, byte[]> consumer =
             new KafkaConsumer<>(p, new StringDeserializer(), new ByteArrayDeserializer())) {
      List<TopicPartition> tps = new ArrayList<>();
      for (PartitionInfo i : consumer.partitionsFor(PREFIX + "jobs")) {
        tps.add(new TopicPartition(PREFIX + "jobs", i.partition()));
      }
      consumer.assign(tps);
      consumer.seekToBeginning(tps);
      ConsumerRecord<String, byte[]> found = null;
      JobCommand cmd = null;
      long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
      while (found == null && System.nanoTime() < deadline) {
        for (ConsumerRecord<String, byte[]> r : consumer.poll(Duration.ofMillis(500))) {
          JobCommand c = JobCommand.parseFrom(r.value());
          if (c.getRunId().equals(runId)) {
            found = r;
            cmd = c;
          }
        }
      }
      assertNotNull(found);
      assertEquals("nightly-orders", found.key());
      assertEquals("nightly-orders", cmd.getJobId());
      assertTrue(cmd.getRequestedAtMs() >= before);
      assertEquals(1, cmd.getAttempt());
    }
  }

  @Test
  void uuid7SortsByTime() {
    UUID a = Uuid7.at(1_700_000_000_000L);
    UUID b = Uuid7.at(1_700_000_000_001L);
    assertEquals(7, a.version());
    assertEquals(2, a.variant());
    assertTrue(a.toString().compareTo(b.toString()) < 0);
  }

}
