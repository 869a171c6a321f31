package dev.outpost.deploy;

import java.util.List;
import java.util.Map;

/**
 * KEDA's ScaledObject (keda.sh/v1alpha1), the fields of its CRD that the chart may use. fabric8
 * has no model for it; these records, read by {@link StrictModel#STRICT}, fail on any other field.
 */
final class Keda {
  private Keda() {}

  record Metadata(String name, String namespace, Map<String, String> labels,
      Map<String, String> annotations) {}

  record ScaleTargetRef(String apiVersion, String kind, String name,
      String envSourceContainerName) {}

  record AuthenticationRef(String name, String kind) {}

  record Trigger(String type, String name, Map<String, String> metadata,
      AuthenticationRef authenticationRef, String metricType, Boolean useCachedMetrics) {}

  record Fallback(Integer failureThreshold, Integer replicas) {}

  record Spec(ScaleTargetRef scaleTargetRef, Integer pollingInterval, Integer cooldownPeriod,
      Integer initialCooldownPeriod, Integer idleReplicaCount, Integer minReplicaCount,
      Integer maxReplicaCount, Fallback fallback, List<Trigger> triggers) {}

  record ScaledObject(String apiVersion, String kind, Metadata metadata, Spec spec) {}
}
