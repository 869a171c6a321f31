package dev.outpost.client;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.MessageDigest;
import java.security.PrivateKey;
import java.security.Signature;
import java.security.interfaces.ECPrivateKey;
import java.security.spec.PKCS8EncodedKeySpec;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;

/**
 * Signs commands for workers with {@code security.commands: require} (docs/security.md): the
 * {@code outpost-signature} header, a JWS whose claims bind the record's exact value (its
 * SHA-256), the topic, the pools it may run in, what it is and a short lifetime. Ed25519 (EdDSA)
 * and P-256 (ES256) keys, as PKCS#8 PEM ({@code outpost keygen} writes Ed25519), with the JDK's
 * own signatures.
 */
public final class CommandSigner {
  public static final String SIGNATURE_HEADER = "outpost-signature";
  static final String TOKEN_TYPE = "outpost-command+jwt";

  private final PrivateKey key;
  private final String algorithm;  // the JWS alg
  private final String kid;
  private final Duration lifetime;
  private final List<String> pools;

  /**
   * @param pem the private key, PKCS#8 PEM
   * @param kid the key's id in the workers' trusted keys
   * @param lifetime how long a token is valid (at most security.max_command_lifetime)
   * @param pools the pools a command may run in when it names none
   */
  public CommandSigner(String pem, String kid, Duration lifetime, List<String> pools)
      throws GeneralSecurityException {
    String body = pem.replaceAll("-----(BEGIN|END) PRIVATE KEY-----", "").replaceAll("\\s", "");
    byte[] der = Base64.getDecoder().decode(body);
    PrivateKey k;
    String alg;
    try {
      k = KeyFactory.getInstance("Ed25519").generatePrivate(new PKCS8EncodedKeySpec(der));
      alg = "EdDSA";
    } catch (GeneralSecurityException notEd25519) {
      k = KeyFactory.getInstance("EC").generatePrivate(new PKCS8EncodedKeySpec(der));
      if (((ECPrivateKey) k).getParams().getCurve().getField().getFieldSize() != 256) {
        throw new GeneralSecurityException("a command signing key is Ed25519 or P-256");
      }
      alg = "ES256";
    }
    this.key = k;
    this.algorithm = alg;
    this.kid = kid;
    this.lifetime = lifetime;
    this.pools = List.copyOf(pools);
  }

  public static CommandSigner fromFile(Path pem, String kid, Duration lifetime, List<String> pools)
      throws java.io.IOException, GeneralSecurityException {
    return new CommandSigner(Files.readString(pem), kid, lifetime, pools);
  }

  /** The JWS algorithm: EdDSA or ES256. */
  public String algorithm() {
    return algorithm;
  }

  /**
   * The token for a record whose value is {@code value}, exactly as written.
   *
   * @param kind "job" or "control"
   * @param jti the run_id (job) or command_id (control)
   * @param commandPools the pools it may run in; empty: the signer's
   */
  public String token(byte[] value, String topic, String kind, String jti,
      List<String> commandPools, Instant now) {
    List<String> aud = new ArrayList<>();
    for (String p : commandPools.isEmpty() ? pools : commandPools) aud.add("outpost:" + p);
    if (aud.isEmpty()) {
      throw new IllegalArgumentException(
          "a signed command names the pools it may run in: give it a pool, or the signer pools");
    }
    long iat = now.getEpochSecond();
    StringBuilder claims = new StringBuilder("{");
    member(claims, "sha256", b64url(sha256(value))).append(',');
    member(claims, "topic", topic).append(',');
    claims.append("\"aud\":[");
    for (int i = 0; i < aud.size(); ++i) {
      if (i > 0) claims.append(',');
      string(claims, aud.get(i));
    }
    claims.append("],");
    member(claims, "kind", kind).append(',');
    member(claims, "jti", jti).append(',');
    member(claims, "cty", "protobuf").append(',');
    claims.append("\"iat\":").append(iat).append(',');
    claims.append("\"exp\":").append(iat + lifetime.toSeconds()).append('}');
    StringBuilder header = new StringBuilder("{");
    member(header, "alg", algorithm).append(',');
    member(header, "kid", kid).append(',');
    member(header, "typ", TOKEN_TYPE).append('}');
    String signingInput = b64url(header.toString().getBytes(StandardCharsets.UTF_8)) + "."
        + b64url(claims.toString().getBytes(StandardCharsets.UTF_8));
    try {
      // ES256 in JWS is r||s, the P1363 form, not DER.
      Signature s = Signature.getInstance(
          algorithm.equals("EdDSA") ? "Ed25519" : "SHA256withECDSAinP1363Format");
      s.initSign(key);
      s.update(signingInput.getBytes(StandardCharsets.US_ASCII));
      return signingInput + "." + b64url(s.sign());
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("signing failed: " + e.getMessage(), e);
    }
  }

  private static byte[] sha256(byte[] value) {
    try {
      return MessageDigest.getInstance("SHA-256").digest(value);
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException(e);
    }
  }

  private static String b64url(byte[] data) {
    return Base64.getUrlEncoder().withoutPadding().encodeToString(data);
  }

  private static StringBuilder member(StringBuilder out, String name, String value) {
    string(out, name);
    out.append(':');
    return string(out, value);
  }

  // A JSON string (RFC 8259): quotes, backslashes and control characters escaped.
  private static StringBuilder string(StringBuilder out, String s) {
    out.append('"');
    for (int i = 0; i < s.length(); ++i) {
      char c = s.charAt(i);
      if (c == '"' || c == '\\') {
        out.append('\\').append(c);
      } else if (c < 0x20) {
        out.append(String.format("\\u%04x", (int) c));
      } else {
        out.append(c);
      }
    }
    return out.append('"');
  }
}
