package dev.outpost.deploy;

import tools.jackson.databind.DeserializationFeature;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.MapperFeature;
import tools.jackson.databind.cfg.MapperConfig;
import tools.jackson.databind.ObjectMapper;
import tools.jackson.databind.introspect.Annotated;
import tools.jackson.databind.introspect.JacksonAnnotationIntrospector;
import tools.jackson.databind.json.JsonMapper;
import tools.jackson.dataformat.yaml.YAMLMapper;
import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.Service;
import io.fabric8.kubernetes.api.model.ServiceAccount;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.api.model.apps.StatefulSet;
import io.fabric8.kubernetes.api.model.policy.v1.PodDisruptionBudget;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Reads rendered Kubernetes objects into fabric8's model, strictly. fabric8's classes keep
 * unknown fields in an {@code additionalProperties} map (a Jackson "any setter"), so a
 * misspelled field would pass unnoticed; this mapper ignores those any-setters and fails on
 * unknown properties, and does not turn strings into numbers or booleans, as the API server
 * would not.
 */
final class StrictModel {
  /** The kinds the chart renders, by apiVersion/kind. */
  static final Map<String, Class<?>> KINDS = Map.of(
      "v1/ConfigMap", ConfigMap.class,
      "v1/Service", Service.class,
      "v1/ServiceAccount", ServiceAccount.class,
      "apps/v1/StatefulSet", StatefulSet.class,
      "apps/v1/Deployment", Deployment.class,
      "policy/v1/PodDisruptionBudget", PodDisruptionBudget.class,
      "keda.sh/v1alpha1/ScaledObject", Keda.ScaledObject.class);

  private static final YAMLMapper YAML = new YAMLMapper();

  static final ObjectMapper STRICT = JsonMapper.builder()
      .annotationIntrospector(new JacksonAnnotationIntrospector() {
        @Override
        public Boolean hasAnySetter(MapperConfig<?> config, Annotated a) {
          return Boolean.FALSE;
        }
      })
      .enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
      .disable(MapperFeature.ALLOW_COERCION_OF_SCALARS)
      .build();

  private StrictModel() {}

  /** One rendered object: its document and the model object it was read into. */
  record Parsed(String kind, String name, JsonNode tree, Object object) {
    <T> T as(Class<T> type) {
      return type.cast(object);
    }
  }

  /** Splits a multi-document YAML stream and reads each object strictly. */
  static List<Parsed> parseAll(String yaml) throws IOException {
    List<Parsed> out = new ArrayList<>();
    try (tools.jackson.databind.MappingIterator<JsonNode> it = YAML.readerFor(JsonNode.class).readValues(yaml)) {
      while (it.hasNext()) {
        JsonNode doc = it.next();
        if (doc == null || doc.isNull() || doc.isMissingNode() || doc.isEmpty()) continue;
        out.add(parse(doc));
      }
    }
    return out;
  }

  static Parsed parse(JsonNode doc) throws IOException {
    String key = doc.path("apiVersion").asText() + "/" + doc.path("kind").asText();
    Class<?> type = KINDS.get(key);
    if (type == null) {
      throw new IOException("a kind the checker does not know: " + key);
    }
    Object object = STRICT.treeToValue(doc, type);
    return new Parsed(doc.path("kind").asText(), doc.path("metadata").path("name").asText(), doc,
        object);
  }
}
