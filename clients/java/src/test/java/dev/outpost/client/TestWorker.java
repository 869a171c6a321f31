package dev.outpost.client;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Comparator;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/** A real worker (OUTPOST_BINARY) for a test class: its topics made, started, stopped, cleaned. */
final class TestWorker implements AutoCloseable {
  final Path dir;
  private Process worker;

  /** A directory for the configuration (written by the caller) and the worker's log. */
  TestWorker(String name) throws Exception {
    dir = Files.createTempDirectory("outpost-" + name + "-");
  }

  static String run(String... args) throws Exception {
    Process p = new ProcessBuilder(args).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes());
    assertEquals(0, p.waitFor(), out);
    return out;
  }

  /** Makes the topics of `config` and starts a worker on it, until it has its partitions. */
  void start(String binary, String config, int partitions) throws Exception {
    Path cfg = dir.resolve("outpost.yaml");
    Files.writeString(cfg, config);
    run(binary, "topics", "--config", cfg.toString(), "--partitions", String.valueOf(partitions));
    Path log = dir.resolve("worker.log");
    worker = new ProcessBuilder(binary, "run", "--config", cfg.toString())
        .redirectErrorStream(true).redirectOutput(log.toFile()).start();
    long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
    while (!Files.readString(log).contains("partitions assigned")) {
      if (System.nanoTime() > deadline || !worker.isAlive()) {
        throw new IllegalStateException("the worker did not start:\n" + Files.readString(log));
      }
      Thread.sleep(100);
    }
  }

  @Override
  public void close() throws Exception {
    if (worker != null) {
      worker.destroy();  // SIGTERM: it drains
      if (!worker.waitFor(60, TimeUnit.SECONDS)) worker.destroyForcibly();
    }
    try (Stream<Path> files = Files.walk(dir)) {
      for (Path p : files.sorted(Comparator.reverseOrder()).toList()) Files.deleteIfExists(p);
    }
  }
}
