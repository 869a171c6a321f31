package dev.outpost.client;

import dev.outpost.v1.Event.RunState;

/** The exit statuses of {@code outpost submit --wait}, for a scheduler step built on this client. */
public enum ExitStatus {
  SUCCEEDED(0),
  FAILED(1),
  USAGE(2),
  TIMED_OUT(3),
  CANCELLED(4),
  REJECTED(5),
  EXPIRED(6),
  WAIT_TIMED_OUT(7),
  KAFKA(8),
  ALREADY_ENDED(9);

  public final int code;

  ExitStatus(int code) {
    this.code = code;
  }

  /** The status of a run that ended in {@code state}. */
  public static ExitStatus of(RunState state) {
    return switch (state) {
      case SUCCEEDED -> SUCCEEDED;
      case TIMED_OUT -> TIMED_OUT;
      case CANCELLED -> CANCELLED;
      case REJECTED -> REJECTED;
      case EXPIRED -> EXPIRED;
      default -> FAILED;
    };
  }
}
