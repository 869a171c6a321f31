package dev.outpost.deploy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import tools.jackson.databind.JsonNode;
import tools.jackson.databind.exc.UnrecognizedPropertyException;
import tools.jackson.databind.node.ObjectNode;
import tools.jackson.dataformat.yaml.YAMLMapper;
import com.marcnuri.helm.Helm;
import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.EnvVar;
import io.fabric8.kubernetes.api.model.PodSpec;
import io.fabric8.kubernetes.api.model.ServiceAccount;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.api.model.apps.StatefulSet;
import io.fabric8.kubernetes.api.model.policy.v1.PodDisruptionBudget;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** deploy/helm/outpost, linted and rendered by Helm, each object read by fabric8's model. */
class ChartTest {
  static final Path CHART = Path.of(System.getProperty("outpost.deploy.dir", ".."))
      .resolve("helm/outpost").toAbsolutePath().normalize();
  static final YAMLMapper YAML = new YAMLMapper();

  /** "default" or a values file of ci/ by its feature name. */
  static Path valuesFile(String feature) {
    return CHART.resolve("ci/" + feature + "-values.yaml");
  }

  static String render(String feature, Map<String, Object> set) {
    var template = new Helm(CHART).template().withName("outpost").withNamespace("ingest");
    if (!feature.equals("default")) template = template.withValuesFile(valuesFile(feature));
    for (var e : set.entrySet()) template = template.set(e.getKey(), e.getValue());
    return template.call();
  }

  static List<StrictModel.Parsed> objects(String feature) throws IOException {
    return StrictModel.parseAll(render(feature, Map.of()));
  }

  static <T> T only(List<StrictModel.Parsed> objects, Class<T> type) {
    var found = objects.stream().filter(p -> type.isInstance(p.object())).toList();
    assertEquals(1, found.size(), "one " + type.getSimpleName() + " in " + kinds(objects));
    return found.get(0).as(type);
  }

  static String kinds(List<StrictModel.Parsed> objects) {
    return objects.stream().map(p -> p.kind() + "/" + p.name()).collect(Collectors.joining(", "));
  }

  static PodSpec podSpec(List<StrictModel.Parsed> objects) {
    for (var p : objects) {
      if (p.object() instanceof StatefulSet s) return s.getSpec().getTemplate().getSpec();
      if (p.object() instanceof Deployment d) return d.getSpec().getTemplate().getSpec();
    }
    throw new AssertionError("no workload in " + kinds(objects));
  }

  static Container worker(PodSpec pod) {
    return pod.getContainers().stream().filter(c -> c.getName().equals("outpost")).findFirst()
        .orElseThrow();
  }

  static String env(Container c, String name) {
    return c.getEnv().stream().filter(e -> e.getName().equals(name)).map(EnvVar::getValue)
        .findFirst().orElse(null);
  }

  /** Values files are merged onto values.yaml the way Helm merges them: maps deeply. */
  static void merge(ObjectNode into, JsonNode from) {
    from.properties().forEach(e -> {
      JsonNode have = into.get(e.getKey());
      if (have instanceof ObjectNode o && e.getValue().isObject()) {
        merge(o, e.getValue());
      } else {
        into.set(e.getKey(), e.getValue());
      }
    });
  }

  // helm lint --strict takes no values file here: each feature's values are merged into a copy
  // of the chart's values.yaml, which is linted.
  @ParameterizedTest
  @ValueSource(strings = {"default", "irsa", "existing-secret", "vault-agent", "keda"})
  void lintsStrictly(String feature, @TempDir Path tmp) throws IOException {
    Path chart = tmp.resolve("outpost");
    try (Stream<Path> files = Files.walk(CHART)) {
      for (Path f : files.sorted(Comparator.naturalOrder()).toList()) {
        Path to = chart.resolve(CHART.relativize(f).toString());
        if (Files.isDirectory(f)) Files.createDirectories(to); else Files.copy(f, to);
      }
    }
    if (!feature.equals("default")) {
      ObjectNode values = (ObjectNode) YAML.readTree(CHART.resolve("values.yaml"));
      merge(values, YAML.readTree(valuesFile(feature)));
      YAML.writeValue(chart.resolve("values.yaml"), values);
    }
    var result = new Helm(chart).lint().strict().call();
    assertFalse(result.isFailed(), String.join("\n", result.getMessages()));
  }

  @ParameterizedTest
  @ValueSource(strings = {"default", "irsa", "existing-secret", "vault-agent", "keda"})
  void everyRenderedObjectIsOneTheModelKnowsField(String feature) throws IOException {
    var objects = objects(feature);
    assertTrue(objects.size() >= 5, kinds(objects));
    for (var p : objects) {
      assertEquals("outpost", p.tree().path("metadata").path("labels")
          .path("app.kubernetes.io/name").asText(), p.kind() + " " + p.name());
    }
    // The worker's config, as rendered, is YAML with the keys the worker reads.
    var config = objects.stream().filter(p -> p.name().equals("outpost"))
        .map(StrictModel.Parsed::object).filter(ConfigMap.class::isInstance)
        .map(ConfigMap.class::cast).findFirst().orElseThrow();
    JsonNode file = YAML.readTree(config.getData().get("outpost.yaml"));
    assertTrue(file.path("kafka").path("bootstrap_servers").isTextual(), file.toString());
  }

  // The worker itself reads each rendered config: `outpost check` (no broker) finds no unknown
  // key or bad value. The binary comes from CTest (-Doutpost.binary); run by hand without it,
  // this test is skipped.
  @ParameterizedTest
  @ValueSource(strings = {"default", "irsa", "existing-secret", "vault-agent", "keda"})
  void theWorkerAcceptsTheRenderedConfig(String feature, @TempDir Path tmp) throws Exception {
    String binary = System.getProperty("outpost.binary", "");
    Assumptions.assumeFalse(binary.isEmpty(), "no -Doutpost.binary: run through ctest -L deploy");
    var config = objects(feature).stream().filter(p -> p.name().equals("outpost"))
        .map(StrictModel.Parsed::object).filter(ConfigMap.class::isInstance)
        .map(ConfigMap.class::cast).findFirst().orElseThrow();
    Path file = tmp.resolve("outpost.yaml");
    Files.writeString(file, config.getData().get("outpost.yaml"));
    var check = new ProcessBuilder(binary, "check", "-c", file.toString())
        .redirectErrorStream(true).start();
    String output = new String(check.getInputStream().readAllBytes());
    assertEquals(0, check.waitFor(), output);
  }

  @Test
  void theDefaultsMakeStaticMembersThatDrainBeforeTheyAreKilled() throws IOException {
    var objects = objects("default");
    var set = only(objects, StatefulSet.class);
    assertEquals(2, set.getSpec().getReplicas());
    assertEquals("outpost", set.getSpec().getServiceName());
    PodSpec pod = podSpec(objects);
    Container c = worker(pod);
    var id = c.getEnv().stream().filter(e -> e.getName().equals("OUTPOST_WORKER__ID")).findFirst()
        .orElseThrow();
    assertEquals("metadata.name", id.getValueFrom().getFieldRef().getFieldPath());
    assertEquals("default", env(c, "OUTPOST_WORKER__POOL"));
    assertEquals("60s", env(c, "OUTPOST_WORKER__DRAIN_TIMEOUT"));
    assertEquals(60 + 60 + 10, pod.getTerminationGracePeriodSeconds());
    assertEquals("/livez", c.getLivenessProbe().getHttpGet().getPath());
    assertEquals("/readyz", c.getReadinessProbe().getHttpGet().getPath());
    assertEquals("/livez", c.getStartupProbe().getHttpGet().getPath());
    assertEquals("0.0.0.0:9464", env(c, "OUTPOST_HTTP__LISTEN"));
    assertEquals(9464, c.getPorts().get(0).getContainerPort());
    assertEquals(List.of("run", "--config", "/etc/outpost/outpost.yaml"), c.getArgs());
    assertEquals("outpost:0.1.0", c.getImage());
    assertTrue(c.getSecurityContext().getReadOnlyRootFilesystem());
    assertEquals(10001L, pod.getSecurityContext().getRunAsUser());
    assertEquals("1Gi", c.getResources().getLimits().get("memory").toString());
    assertEquals(1, only(objects, PodDisruptionBudget.class).getSpec().getMaxUnavailable()
        .getIntVal());
    assertNull(pod.getInitContainers().isEmpty() ? null : pod.getInitContainers());
    assertTrue(objects.stream().noneMatch(p -> p.object() instanceof Keda.ScaledObject));
    assertNull(env(c, "OUTPOST_SECRETS__FILE_DIR"));
  }

  @Test
  void commandsMustBeSignedByTheKeysOfASecretByDefault() throws IOException {
    PodSpec pod = podSpec(objects("default"));
    Container c = worker(pod);
    assertEquals("require", env(c, "OUTPOST_SECURITY__COMMANDS"));
    assertEquals("/etc/outpost-trusted-keys/jwks.json", env(c, "OUTPOST_SECURITY__TRUSTED_KEYS"));
    var volume = pod.getVolumes().stream().filter(v -> v.getName().equals("trusted-keys"))
        .findFirst().orElseThrow();
    assertEquals("outpost-trusted-keys", volume.getSecret().getSecretName());
    var mount = c.getVolumeMounts().stream().filter(m -> m.getName().equals("trusted-keys"))
        .findFirst().orElseThrow();
    assertEquals("/etc/outpost-trusted-keys", mount.getMountPath());
    assertTrue(mount.getReadOnly());

    // off: said to the worker, and nothing mounted.
    PodSpec off = podSpec(StrictModel.parseAll(render("default",
        Map.of("commandSigning.mode", "off"))));
    assertEquals("off", env(worker(off), "OUTPOST_SECURITY__COMMANDS"));
    assertNull(env(worker(off), "OUTPOST_SECURITY__TRUSTED_KEYS"));
    assertTrue(off.getVolumes().stream().noneMatch(v -> v.getName().equals("trusted-keys")));
  }

  @Test
  void drainTimeAndKillGraceSetTheGracePeriod() throws IOException {
    var objects = StrictModel.parseAll(render("default",
        Map.of("drainTimeoutSeconds", 300, "killGraceSeconds", 30)));
    assertEquals(340, podSpec(objects).getTerminationGracePeriodSeconds());
    assertEquals("300s", env(worker(podSpec(objects)), "OUTPOST_WORKER__DRAIN_TIMEOUT"));
  }

  @Test
  void irsaAnnotatesTheServiceAccountThePodsUse() throws IOException {
    var objects = objects("irsa");
    var sa = only(objects, ServiceAccount.class);
    assertEquals("arn:aws:iam::123456789012:role/outpost-worker",
        sa.getMetadata().getAnnotations().get("eks.amazonaws.com/role-arn"));
    assertEquals(sa.getMetadata().getName(), podSpec(objects).getServiceAccountName());
  }

  @Test
  void anExistingSecretIsMountedWhereTheFileStoreReads() throws IOException {
    var objects = objects("existing-secret");
    only(objects, Deployment.class);
    PodSpec pod = podSpec(objects);
    var volume = pod.getVolumes().stream().filter(v -> v.getName().equals("secrets")).findFirst()
        .orElseThrow();
    assertEquals("outpost-credentials", volume.getSecret().getSecretName());
    Container c = worker(pod);
    var mount = c.getVolumeMounts().stream().filter(m -> m.getName().equals(volume.getName()))
        .findFirst().orElseThrow();
    assertEquals("/mnt/secrets", mount.getMountPath());
    assertTrue(mount.getReadOnly());
    assertEquals("/mnt/secrets", env(c, "OUTPOST_SECRETS__FILE_DIR"));
    assertEquals("iam.gke.io/gcp-service-account", only(objects, ServiceAccount.class)
        .getMetadata().getAnnotations().keySet().iterator().next());

    // asEnv: the same Secret as environment variables instead.
    var asEnv = StrictModel.parseAll(render("existing-secret", Map.of("existingSecret.asEnv", true)));
    Container e = worker(podSpec(asEnv));
    assertEquals("outpost-credentials", e.getEnvFrom().get(0).getSecretRef().getName());
    assertTrue(podSpec(asEnv).getVolumes().stream().noneMatch(v -> v.getName().equals("secrets")));
  }

  @Test
  void theVaultAgentRendersSecretsIntoMemoryBeforeTheWorkerStarts() throws IOException {
    var objects = objects("vault-agent");
    PodSpec pod = podSpec(objects);
    assertEquals(1, pod.getInitContainers().size());
    Container agent = pod.getInitContainers().get(0);
    assertEquals(List.of("vault", "agent", "-config=/vault/config/agent.hcl"), agent.getCommand());
    var secrets = pod.getVolumes().stream().filter(v -> v.getName().equals("secrets")).findFirst()
        .orElseThrow();
    assertEquals("Memory", secrets.getEmptyDir().getMedium());
    assertEquals("/vault/secrets", env(worker(pod), "OUTPOST_SECRETS__FILE_DIR"));
    var agentConfig = objects.stream().filter(p -> p.name().equals("outpost-vault-agent"))
        .map(p -> p.as(ConfigMap.class)).findFirst().orElseThrow();
    String hcl = agentConfig.getData().get("agent.hcl");
    assertTrue(hcl.contains("destination = \"/vault/secrets/kafka-password\""), hcl);
    assertTrue(hcl.contains("destination = \"/vault/secrets/lineage-api-key\""), hcl);
    assertTrue(hcl.contains("{{ with secret \"kv/data/outpost/kafka\" }}"), hcl);
    assertTrue(hcl.contains("role = \"outpost\""), hcl);
  }

  @Test
  void kedaScalesTheWorkloadOnTheGroupsLag() throws IOException {
    var objects = objects("keda");
    var scaled = only(objects, Keda.ScaledObject.class);
    assertEquals("StatefulSet", scaled.spec().scaleTargetRef().kind());
    assertEquals("outpost", scaled.spec().scaleTargetRef().name());
    assertEquals(6, scaled.spec().maxReplicaCount());
    var trigger = scaled.spec().triggers().get(0);
    assertEquals("kafka", trigger.type());
    assertEquals("outpost.etl", trigger.metadata().get("consumerGroup"));
    assertEquals("acme.etl.jobs", trigger.metadata().get("topic"));
    assertEquals("4", trigger.metadata().get("lagThreshold"));
    assertEquals("outpost-kafka", trigger.authenticationRef().name());
    // KEDA owns the replica count.
    assertNull(only(objects, StatefulSet.class).getSpec().getReplicas());

    var prefixOnly = StrictModel.parseAll(render("keda", Map.of("config.topics.jobs", "")));
    assertEquals("acme.jobs", only(prefixOnly, Keda.ScaledObject.class).spec().triggers().get(0)
        .metadata().get("topic"));
  }

  @Test
  void aMisspelledFieldFailsTheStrictReading() throws IOException {
    String rendered = render("default", Map.of());
    assertTrue(rendered.contains("terminationGracePeriodSeconds:"));
    var e = assertThrows(UnrecognizedPropertyException.class, () -> StrictModel.parseAll(
        rendered.replace("terminationGracePeriodSeconds:", "terminationGracePeriodSecond:")));
    assertTrue(e.getMessage().contains("terminationGracePeriodSecond"), e.getMessage());
    // Deep inside a container, too.
    assertThrows(UnrecognizedPropertyException.class, () -> StrictModel.parseAll(
        rendered.replace("readinessProbe:", "readynessProbe:")));
    // A string where the API wants a number.
    assertThrows(RuntimeException.class, () -> StrictModel.parseAll(
        rendered.replaceFirst("replicas: 2", "replicas: \"2\"")));
    // And in KEDA's ScaledObject.
    String keda = render("keda", Map.of());
    assertThrows(UnrecognizedPropertyException.class, () -> StrictModel.parseAll(
        keda.replace("maxReplicaCount:", "maxReplicas:")));
  }

  @Test
  void valuesThatCannotWorkAreRefusedWithTheReason() {
    var kind = assertThrows(RuntimeException.class, () -> render("default", Map.of("kind", "Job")));
    assertTrue(kind.getMessage().contains("kind must be StatefulSet or Deployment"), kind.getMessage());
    var both = assertThrows(RuntimeException.class,
        () -> render("vault-agent", Map.of("existingSecret.name", "creds")));
    assertTrue(both.getMessage().contains("existingSecret.asEnv"), both.getMessage());
    var mode = assertThrows(RuntimeException.class,
        () -> render("default", Map.of("commandSigning.mode", "sometimes")));
    assertTrue(mode.getMessage().contains("commandSigning.mode must be"), mode.getMessage());
    var noKeys = assertThrows(RuntimeException.class,
        () -> render("default", Map.of("commandSigning.trustedKeysSecret", "")));
    assertTrue(noKeys.getMessage().contains("commandSigning.trustedKeysSecret"),
        noKeys.getMessage());
  }
}
