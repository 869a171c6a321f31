package dev.outpost.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.outpost.v1.Event.RunEvent;
import dev.outpost.v1.Event.RunState;
import java.math.BigInteger;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.interfaces.ECPublicKey;
import java.security.spec.ECGenParameterSpec;
import java.time.Duration;
import java.util.Arrays;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * A worker with security.commands: require (OUTPOST_BINARY, against OUTPOST_TEST_BOOTSTRAP) runs
 * what CommandSigner signs, with a key `outpost keygen` made (Ed25519) or the JDK made (P-256),
 * and refuses an unsigned command.
 */
class SignedCommandsTest {
  static final String BOOTSTRAP = OutpostClientTest.BOOTSTRAP;
  static final String BINARY = OutpostClientTest.BINARY;
  static final String TAG = UUID.randomUUID().toString().substring(0, 10);
  static final String PREFIX = "java-signed-" + TAG + ".";
  static final String POOL = "java-signed-" + TAG;
  static TestWorker worker;
  static OutpostClient plain;
  static OutpostClient ed;
  static OutpostClient p256;

  static String b64url(BigInteger n) {
    byte[] raw = n.toByteArray();
    byte[] fixed = new byte[32];  // unsigned, big-endian, 32 bytes
    int from = Math.max(0, raw.length - 32);
    System.arraycopy(raw, from, fixed, 32 - (raw.length - from), raw.length - from);
    return Base64.getUrlEncoder().withoutPadding().encodeToString(fixed);
  }

  @BeforeAll
  static void startAWorkerThatRequiresSignatures() throws Exception {
    Assumptions.assumeTrue(!BOOTSTRAP.isEmpty() && !BINARY.isEmpty(),
        "needs OUTPOST_TEST_BOOTSTRAP and OUTPOST_BINARY (scripts/test sets them)");
    worker = new TestWorker("java-signed");
    Path jwks = worker.dir.resolve("jwks.json");
    Path edKey = worker.dir.resolve("ed.pem");
    TestWorker.run(BINARY, "keygen", "--kid", "ed", "--private-key", edKey.toString(), "--jwks",
        jwks.toString());
    KeyPairGenerator gen = KeyPairGenerator.getInstance("EC");
    gen.initialize(new ECGenParameterSpec("secp256r1"));
    KeyPair pair = gen.generateKeyPair();
    ECPublicKey pub = (ECPublicKey) pair.getPublic();
    String jwk = "{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"p256\",\"use\":\"sig\","
        + "\"alg\":\"ES256\",\"x\":\"" + b64url(pub.getW().getAffineX()) + "\",\"y\":\""
        + b64url(pub.getW().getAffineY()) + "\"}";
    String set = Files.readString(jwks);
    Files.writeString(jwks, set.substring(0, set.lastIndexOf(']')) + "," + jwk + "]}");
    String p256Pem = "-----BEGIN PRIVATE KEY-----\n"
        + Base64.getMimeEncoder().encodeToString(pair.getPrivate().getEncoded())
        + "\n-----END PRIVATE KEY-----\n";

    worker.start(BINARY, String.join("\n",
        "worker:", "  id: java-signed-" + TAG, "  pool: " + POOL, "  slots: 4",
        "  work_dir: " + worker.dir.resolve("runs"), "  drain_timeout: 30s",
        "kafka:", "  bootstrap_servers: " + BOOTSTRAP,
        "topics:", "  prefix: " + PREFIX,
        "http:", "  listen: \"off\"",
        "security:", "  commands: require", "  trusted_keys: " + jwks,
        "templates:",
        "  ok:", "    argv: [sh, -c, \"echo ok\"]", "    allow_shell: true", "    recipe: none",
        "  sleep:", "    argv: [sh, -c, \"sleep {secs}\"]", "    allow_shell: true",
        "    params: {secs: {pattern: \"[0-9]+\"}}", "    recipe: none",
        ""), 1);
    plain = new OutpostClient(BOOTSTRAP, PREFIX, Map.of());
    ed = new OutpostClient(BOOTSTRAP, PREFIX, Map.of()).signWith(
        CommandSigner.fromFile(edKey, "ed", Duration.ofMinutes(5), List.of(POOL)));
    p256 = new OutpostClient(BOOTSTRAP, PREFIX, Map.of()).signWith(
        new CommandSigner(p256Pem, "p256", Duration.ofMinutes(5), List.of(POOL)));
    assertEquals("ES256",
        new CommandSigner(p256Pem, "p256", Duration.ofMinutes(5), List.of(POOL)).algorithm());
  }

  @AfterAll
  static void stopTheWorker() throws Exception {
    for (OutpostClient c : Arrays.asList(plain, ed, p256)) {
      if (c != null) c.close();
    }
    if (worker != null) worker.close();
  }

  @Test
  void aCommandSignedWithEd25519OrP256RunsAndAnUnsignedOneIsRejected() throws Exception {
    for (OutpostClient signed : List.of(ed, p256)) {
      String runId = signed.submit(SubmitRequest.of("ok").pool(POOL));
      RunEvent end = signed.wait(runId, Duration.ofSeconds(60), null);
      assertEquals(RunState.SUCCEEDED, end.getState(), end.getMessage());
    }
    String runId = plain.submit(SubmitRequest.of("ok").pool(POOL));
    RunEvent end = plain.wait(runId, Duration.ofSeconds(60), null);
    assertEquals(RunState.REJECTED, end.getState());
    assertTrue(end.getMessage().contains("signature: unsigned"), end.getMessage());
  }

  @Test
  void aSignedCancelCancels() throws Exception {
    String runId = ed.submit(SubmitRequest.of("sleep").arg("secs", "60").pool(POOL));
    assertTrue(ed.watch(runId, null, Duration.ofSeconds(60),
        e -> e.getState() != RunState.STARTED), "the run started");
    ed.cancel(runId, "test", "java-test");
    RunEvent end = ed.wait(runId, Duration.ofSeconds(60), null);
    assertEquals(RunState.CANCELLED, end.getState(), end.getMessage());
  }
}
