package dev.outpost.client;

import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;

/** What to run: a template ({@code jobType}) with its arguments, environment, recipe and limits. */
public final class SubmitRequest {
  final String jobType;
  String jobId;
  String runId;
  String pool;
  byte[] recipe;
  Duration timeout;
  Duration startWithin;
  String requestedBy;
  final Map<String, String> args = new LinkedHashMap<>();
  final Map<String, String> env = new LinkedHashMap<>();
  final Map<String, String> labels = new LinkedHashMap<>();

  private SubmitRequest(String jobType) {
    this.jobType = jobType;
  }

  public static SubmitRequest of(String jobType) {
    return new SubmitRequest(jobType);
  }

  /** The message key; runs of one job stay ordered. Default: the job type. */
  public SubmitRequest jobId(String v) { jobId = v; return this; }
  /** Default: a new UUIDv7. */
  public SubmitRequest runId(String v) { runId = v; return this; }
  public SubmitRequest pool(String v) { pool = v; return this; }
  public SubmitRequest recipe(byte[] v) { recipe = v.clone(); return this; }
  /** The run's time limit. */
  public SubmitRequest timeout(Duration v) { timeout = v; return this; }
  /** How long the command may wait to start before it ends EXPIRED. */
  public SubmitRequest startWithin(Duration v) { startWithin = v; return this; }
  public SubmitRequest requestedBy(String v) { requestedBy = v; return this; }
  public SubmitRequest arg(String name, String value) { args.put(name, value); return this; }
  public SubmitRequest env(String name, String value) { env.put(name, value); return this; }
  public SubmitRequest label(String name, String value) { labels.put(name, value); return this; }
}
