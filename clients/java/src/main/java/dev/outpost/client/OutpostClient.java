package dev.outpost.client;

import com.google.protobuf.ByteString;
import com.google.protobuf.InvalidProtocolBufferException;
import dev.outpost.v1.Control.CancelRun;
import dev.outpost.v1.Control.ControlCommand;
import dev.outpost.v1.Event.RunEvent;
import dev.outpost.v1.Event.RunState;
import dev.outpost.v1.Job.JobCommand;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Predicate;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndTimestamp;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * A control plane's connection to one Outpost installation: submit, cancel, wait and watch.
 *
 * <p>The wire contract (docs/clients.md, "Submitting from your scheduler"): a JobCommand to the
 * jobs topic keyed by its job_id, with requested_at_ms and a UUIDv7 run_id; a ControlCommand to
 * the control topic keyed by the run_id; RunEvents on the events topic keyed by the run_id, read
 * read_committed; each run ends with one terminal event (a lost attempt's FAILED carries
 * retrying and is not the end).
 */
public final class OutpostClient implements AutoCloseable {
  static final Set<RunState> TERMINAL = EnumSet.of(RunState.SUCCEEDED, RunState.FAILED,
      RunState.TIMED_OUT, RunState.CANCELLED, RunState.REJECTED, RunState.EXPIRED);
  /** A worker's NOTICE for a cancel that came after the run ended: "... ended STATE". */
  public static final String ENDED_BEFORE = "cancel ignored: run already ended ";

  private final Map<String, Object> kafka;
  private final String jobsTopic;
  private final String controlTopic;
  private final String eventsTopic;
  private final Map<String, Long> submittedAt = new ConcurrentHashMap<>();
  private KafkaProducer<String, byte[]> producer;
  private CommandSigner signer;  // null: commands are not signed

  /**
   * @param bootstrapServers the brokers
   * @param prefix the topics' prefix (topics.prefix of the workers' config), e.g. "outpost."
   * @param kafka further Kafka client settings (security.protocol, sasl.*, ssl.*), or empty
   */
  public OutpostClient(String bootstrapServers, String prefix, Map<String, Object> kafka) {
    this.kafka = new HashMap<>(kafka);
    this.kafka.put("bootstrap.servers", bootstrapServers);
    this.jobsTopic = prefix + "jobs";
    this.controlTopic = prefix + "control";
    this.eventsTopic = prefix + "events";
  }

  /** Signs every command written from now on (workers with security.commands: require). */
  public OutpostClient signWith(CommandSigner signer) {
    this.signer = signer;
    return this;
  }

  private synchronized KafkaProducer<String, byte[]> producer() {
    if (producer == null) {
      Properties p = new Properties();
      p.putAll(kafka);
      p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true);
      p.put(ProducerConfig.ACKS_CONFIG, "all");
      p.put(ProducerConfig.LINGER_MS_CONFIG, 0);
      producer = new KafkaProducer<>(p, new StringSerializer(), new ByteArraySerializer());
    }
    return producer;
  }

  // Signed as `kind` with id `jti` for `pools` (empty: the signer's) when a signer is set.
  private void send(String topic, String key, byte[] value, String kind, String jti,
      List<String> pools) {
    ProducerRecord<String, byte[]> record = new ProducerRecord<>(topic, key, value);
    if (signer != null) {
      record.headers().add(CommandSigner.SIGNATURE_HEADER,
          signer.token(value, topic, kind, jti, pools, Instant.now())
              .getBytes(StandardCharsets.US_ASCII));
    }
    try {
      producer().send(record).get(30, TimeUnit.SECONDS);
    } catch (ExecutionException e) {
      throw new KafkaException("not delivered to " + topic + ": " + e.getCause(), e.getCause());
    } catch (TimeoutException e) {
      throw new KafkaException("the broker did not acknowledge the record to " + topic
          + " within 30 s", e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new KafkaException("interrupted", e);
    }
  }

  /** Writes the command and returns its run_id once the broker has it. */
  public String submit(SubmitRequest r) {
    long now = System.currentTimeMillis();
    JobCommand.Builder cmd = JobCommand.newBuilder()
        .setRunId(r.runId != null ? r.runId : Uuid7.next().toString())
        .setJobType(r.jobType)
        .setJobId(r.jobId != null ? r.jobId : r.jobType)
        .setAttempt(1)
        .setRequestedAtMs(now)
        .putAllArgs(r.args)
        .putAllEnv(r.env)
        .putAllLabels(r.labels);
    if (r.pool != null) cmd.setPool(r.pool);
    if (r.recipe != null) cmd.setRecipe(ByteString.copyFrom(r.recipe));
    if (r.timeout != null) cmd.setTimeoutMs(r.timeout.toMillis());
    if (r.startWithin != null) cmd.setNotAfterMs(now + r.startWithin.toMillis());
    if (r.requestedBy != null) cmd.setRequestedBy(r.requestedBy);
    JobCommand c = cmd.build();
    send(jobsTopic, c.getJobId(), c.toByteArray(), "job", c.getRunId(),
        c.getPool().isEmpty() ? List.of() : List.of(c.getPool()));
    submittedAt.put(c.getRunId(), now);
    return c.getRunId();
  }

  /** Asks the worker holding the run to stop it; returns the control command's id. */
  public String cancel(String runId, String reason, String requestedBy) {
    long now = System.currentTimeMillis();
    ControlCommand cmd = ControlCommand.newBuilder()
        .setCommandId(Uuid7.next().toString())
        .setIssuedAtMs(now)
        .setCancel(CancelRun.newBuilder()
            .setRunId(runId).setReason(reason == null ? "" : reason)
            .setRequestedBy(requestedBy == null ? System.getProperty("user.name", "") : requestedBy))
        .build();
    send(controlTopic, runId, cmd.toByteArray(), "control", cmd.getCommandId(), List.of());
    submittedAt.putIfAbsent(runId, now);
    return cmd.getCommandId();
  }

  /** Receives events; returns false to stop watching. */
  @FunctionalInterface
  public interface EventHandler {
    boolean onEvent(RunEvent event);
  }

  /**
   * Hands RunEvents to {@code handler} as they are written (read_committed, outside any consumer
   * group), of one run ({@code runId}) or of all (null), from {@code since} (default: a minute
   * before this client submitted the run, else a minute ago), until the handler returns false or
   * {@code timeout} passes. Returns whether the handler stopped it.
   */
  public boolean watch(String runId, Instant since, Duration timeout, EventHandler handler) {
    long from = since != null ? since.toEpochMilli()
        : submittedAt.getOrDefault(runId, System.currentTimeMillis()) - 60_000;
    Properties p = new Properties();
    p.putAll(kafka);
    p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
    p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
    try (KafkaConsumer<String, byte[]> consumer =
             new KafkaConsumer<>(p, new StringDeserializer(), new ByteArrayDeserializer())) {
      List<PartitionInfo> infos = consumer.partitionsFor(eventsTopic, Duration.ofSeconds(30));
      if (infos == null || infos.isEmpty()) {
        throw new KafkaException("no topic " + eventsTopic + " to read");
      }
      Map<TopicPartition, Long> query = new HashMap<>();
      for (PartitionInfo i : infos) query.put(new TopicPartition(eventsTopic, i.partition()), from);
      consumer.assign(new ArrayList<>(query.keySet()));
      // The ends first: a partition with no record since `from` is read from its end as it was
      // before the query, so nothing written in between is missed.
      Map<TopicPartition, Long> ends = consumer.endOffsets(query.keySet(), Duration.ofSeconds(30));
      Map<TopicPartition, OffsetAndTimestamp> starts =
          consumer.offsetsForTimes(query, Duration.ofSeconds(30));
      for (TopicPartition tp : query.keySet()) {
        OffsetAndTimestamp at = starts.get(tp);
        consumer.seek(tp, at != null ? at.offset() : ends.get(tp));
      }
      long deadline = timeout == null ? Long.MAX_VALUE : System.nanoTime() + timeout.toNanos();
      while (System.nanoTime() - deadline < 0) {
        for (ConsumerRecord<String, byte[]> rec : consumer.poll(Duration.ofMillis(200))) {
          if (runId != null && !runId.equals(rec.key())) continue;
          RunEvent e;
          try {
            e = RunEvent.parseFrom(rec.value());
          } catch (InvalidProtocolBufferException ex) {
            continue;  // not a RunEvent: not ours to judge
          }
          if (runId != null && !runId.equals(e.getRunId())) continue;
          if (!handler.onEvent(e)) return true;
        }
      }
      return false;
    }
  }

  /**
   * The run's terminal RunEvent (for a cancel that came after the end, the NOTICE saying how it
   * had ended). {@code onEvent} (may be null) sees every event of the run.
   *
   * @throws WaitTimeoutException when the run did not end within {@code timeout}
   */
  public RunEvent wait(String runId, Duration timeout, Predicate<RunEvent> onEvent)
      throws WaitTimeoutException {
    return wait(runId, null, timeout, onEvent);
  }

  /** As {@link #wait(String, Duration, Predicate)}, reading the events written from {@code since}. */
  public RunEvent wait(String runId, Instant since, Duration timeout, Predicate<RunEvent> onEvent)
      throws WaitTimeoutException {
    RunEvent[] end = new RunEvent[1];
    watch(runId, since, timeout, e -> {
      if (onEvent != null) onEvent.test(e);
      boolean ended = (TERMINAL.contains(e.getState()) && !e.getRetrying())
          || (e.getState() == RunState.NOTICE && e.getMessage().startsWith(ENDED_BEFORE));
      if (ended) end[0] = e;
      return !ended;
    });
    if (end[0] == null) {
      throw new WaitTimeoutException("run " + runId + " did not end within " + timeout
          + "; it may still end");
    }
    return end[0];
  }

  @Override
  public synchronized void close() {
    if (producer != null) {
      producer.close(Duration.ofSeconds(30));
      producer = null;
    }
  }
}
