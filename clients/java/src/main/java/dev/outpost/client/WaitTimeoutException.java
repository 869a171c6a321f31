package dev.outpost.client;

/** The run did not end within the time given; it may still end. */
public class WaitTimeoutException extends Exception {
  public WaitTimeoutException(String message) {
    super(message);
  }
}
