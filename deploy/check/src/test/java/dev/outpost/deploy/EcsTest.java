package dev.outpost.deploy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import software.amazon.awssdk.services.ecs.model.ContainerDefinition;
import software.amazon.awssdk.services.ecs.model.KeyValuePair;
import software.amazon.awssdk.services.ecs.model.RegisterTaskDefinitionRequest;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.exc.UnrecognizedPropertyException;
import tools.jackson.dataformat.yaml.YAMLMapper;

/**
 * deploy/ecs: the task definition is read into the ECS API's own RegisterTaskDefinition request
 * (the AWS SDK's model), strictly, and held to what Fargate requires; the CloudFormation stack is
 * valid YAML whose references all resolve and whose task definition says what the JSON says.
 */
class EcsTest {
  static final Path ECS = Path.of(System.getProperty("outpost.deploy.dir", ".."))
      .resolve("ecs").toAbsolutePath().normalize();

  static RegisterTaskDefinitionRequest read(String json) {
    Class<?> builder = RegisterTaskDefinitionRequest.serializableBuilderClass();
    var b = (RegisterTaskDefinitionRequest.Builder) StrictModel.STRICT.readValue(json, builder);
    return b.build();
  }

  static RegisterTaskDefinitionRequest taskDefinition() throws IOException {
    return read(Files.readString(ECS.resolve("task-definition.json")));
  }

  static long seconds(String duration) {
    Matcher m = Pattern.compile("(\\d+)s").matcher(duration);
    assertTrue(m.matches(), duration);
    return Long.parseLong(m.group(1));
  }

  @Test
  void theTaskDefinitionIsWhatFargateAccepts() throws IOException {
    var td = taskDefinition();
    assertEquals("outpost-worker", td.family());
    assertEquals(List.of("FARGATE"), td.requiresCompatibilitiesAsStrings());
    assertEquals("awsvpc", td.networkModeAsString());
    // One of Fargate's cpu/memory pairs: 1 vCPU takes 2-8 GiB.
    assertEquals("1024", td.cpu());
    int memory = Integer.parseInt(td.memory());
    assertTrue(memory >= 2048 && memory <= 8192 && memory % 1024 == 0, td.memory());
    assertEquals(1, td.containerDefinitions().size());
    ContainerDefinition c = td.containerDefinitions().get(0);
    assertNotNull(c.name());
    assertNotNull(c.image());
    assertTrue(c.essential());
    // Secrets by ARN need the execution role, which ECS uses to read them.
    assertTrue(td.executionRoleArn().startsWith("arn:aws:iam::"));
    for (var s : c.secrets()) {
      assertTrue(s.valueFrom().matches("arn:aws:(secretsmanager|ssm):[a-z0-9-]+:\\d{12}:.+"),
          s.valueFrom());
    }
    // The health check is the worker's /livez, in the form ECS runs.
    assertEquals("CMD", c.healthCheck().command().get(0));
    assertTrue(c.healthCheck().command().contains("http://127.0.0.1:9464/livez"));
    assertTrue(c.healthCheck().startPeriod() >= 30);
    // Fargate waits at most 120 s after SIGTERM: the drain must end before it.
    assertTrue(c.stopTimeout() <= 120);
    Map<String, String> env = c.environment().stream()
        .collect(Collectors.toMap(KeyValuePair::name, KeyValuePair::value));
    assertTrue(seconds(env.get("OUTPOST_WORKER__DRAIN_TIMEOUT")) + 10 <= c.stopTimeout(),
        "drain_timeout and a margin fit in stopTimeout");
    // Every ${env:NAME} reference names a variable ECS injects from a secret.
    Set<String> injected = c.secrets().stream().map(s -> s.name()).collect(Collectors.toSet());
    Matcher ref = Pattern.compile("\\$\\{env:([A-Za-z_][A-Za-z0-9_]*)").matcher(env.toString());
    int refs = 0;
    while (ref.find()) {
      assertTrue(injected.contains(ref.group(1)), ref.group(1) + " is injected");
      refs++;
    }
    assertTrue(refs > 0);
    // Commands must be signed, by the keys of a JWKS that ECS injects from a secret.
    assertEquals("require", env.get("OUTPOST_SECURITY__COMMANDS"));
    assertTrue(injected.contains(env.get("OUTPOST_SECURITY__TRUSTED_KEYS_ENV")),
        "the trusted keys come from a secret");
    // No secret value in the plain environment.
    assertTrue(env.values().stream().noneMatch(v -> v.toLowerCase().contains("password=")));
    assertEquals(9464, c.portMappings().get(0).containerPort());
  }

  @Test
  void aMisspelledFieldInTheTaskDefinitionFails() throws IOException {
    String json = Files.readString(ECS.resolve("task-definition.json"));
    var e = assertThrows(UnrecognizedPropertyException.class,
        () -> read(json.replace("\"stopTimeout\"", "\"stopTimeOut\"")));
    assertTrue(e.getMessage().contains("stopTimeOut"), e.getMessage());
    assertThrows(UnrecognizedPropertyException.class,
        () -> read(json.replace("\"healthCheck\"", "\"healthcheck\"")));
  }

  @Test
  void theStackIsValidAndEveryReferenceResolves() throws IOException {
    String text = Files.readString(ECS.resolve("outpost-service.yaml"));
    JsonNode stack = new YAMLMapper().readTree(text);
    assertEquals("2010-09-09", stack.path("AWSTemplateFormatVersion").asText());
    Set<String> names = new HashSet<>();
    stack.path("Parameters").propertyNames().forEach(names::add);
    stack.path("Resources").propertyNames().forEach(names::add);
    // !Ref X, !GetAtt X.Attr and ${X} inside !Sub name a parameter, a resource or AWS::*.
    Matcher m = Pattern.compile("!Ref ([A-Za-z0-9:]+)|!GetAtt ([A-Za-z0-9]+)\\.|\\$\\{([A-Za-z0-9:]+)[}.]")
        .matcher(text);
    int refs = 0;
    while (m.find()) {
      String name = m.group(1) != null ? m.group(1) : m.group(2) != null ? m.group(2) : m.group(3);
      if (name.startsWith("AWS::") || name.startsWith("env:")) continue;
      assertTrue(names.contains(name), "reference to an undefined " + name);
      refs++;
    }
    assertTrue(refs >= 10, "found " + refs);
    // The properties each resource type requires.
    Map<String, List<String>> required = Map.of(
        "AWS::ECS::Cluster", List.of(),
        "AWS::Logs::LogGroup", List.of(),
        "AWS::IAM::Role", List.of("AssumeRolePolicyDocument"),
        "AWS::EC2::SecurityGroup", List.of("GroupDescription"),
        "AWS::ECS::TaskDefinition", List.of("ContainerDefinitions"),
        "AWS::ECS::Service", List.of("TaskDefinition"));
    stack.path("Resources").properties().forEach(r -> {
      String type = r.getValue().path("Type").asText();
      assertTrue(required.containsKey(type), r.getKey() + ": " + type);
      for (String p : required.get(type)) {
        assertTrue(r.getValue().path("Properties").has(p), r.getKey() + " needs " + p);
      }
    });
    JsonNode service = stack.path("Resources").path("Service").path("Properties");
    assertEquals("FARGATE", service.path("LaunchType").asText());
    assertEquals(100, service.path("DeploymentConfiguration").path("MaximumPercent").asInt());
    assertEquals("DISABLED", service.path("NetworkConfiguration").path("AwsvpcConfiguration")
        .path("AssignPublicIp").asText());
  }

  @Test
  void theStacksTaskDefinitionSaysWhatTheJsonSays() throws IOException {
    JsonNode c = new YAMLMapper().readTree(ECS.resolve("outpost-service.yaml").toFile())
        .path("Resources").path("TaskDefinition").path("Properties").path("ContainerDefinitions")
        .get(0);
    ContainerDefinition json = taskDefinition().containerDefinitions().get(0);
    List<String> healthCheck = c.path("HealthCheck").path("Command").valueStream()
        .map(JsonNode::asText).toList();
    assertEquals(json.healthCheck().command(), healthCheck);
    assertEquals(json.stopTimeout().intValue(), c.path("StopTimeout").asInt());
    assertEquals(json.healthCheck().startPeriod().intValue(),
        c.path("HealthCheck").path("StartPeriod").asInt());
    Set<String> envNames = c.path("Environment").valueStream().map(e -> e.path("Name").asText())
        .collect(Collectors.toSet());
    assertEquals(json.environment().stream().map(KeyValuePair::name).collect(Collectors.toSet()),
        envNames);
    assertEquals(json.secrets().stream().map(s -> s.name()).collect(Collectors.toSet()),
        c.path("Secrets").valueStream().map(e -> e.path("Name").asText())
            .collect(Collectors.toSet()));
  }
}
