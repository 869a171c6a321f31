{{/* The release's full name, at most 63 characters. */}}
{{- define "outpost.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "outpost.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "outpost.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "outpost.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
outpost.dev/pool: {{ .Values.pool | quote }}
{{- end -}}

{{- define "outpost.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "outpost.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Where the file secret store reads: the Vault agent's volume, or the existing Secret's. */}}
{{- define "outpost.secretsDir" -}}
{{- if .Values.vaultAgent.enabled -}}/vault/secrets{{- else -}}/mnt/secrets{{- end -}}
{{- end -}}

{{/* The jobs topic: config.topics.jobs, else the prefix and "jobs". */}}
{{- define "outpost.jobsTopic" -}}
{{- $topics := default dict .Values.config.topics -}}
{{- default (printf "%sjobs" (default "outpost." $topics.prefix)) $topics.jobs -}}
{{- end -}}

{{- define "outpost.checks" -}}
{{- if not (has .Values.kind (list "StatefulSet" "Deployment")) -}}
{{- fail (printf "kind must be StatefulSet or Deployment, not %q" .Values.kind) -}}
{{- end -}}
{{- if and .Values.vaultAgent.enabled .Values.existingSecret.name (not .Values.existingSecret.asEnv) -}}
{{- fail "vaultAgent and existingSecret both give secrets.file_dir: set existingSecret.asEnv: true to take the Secret as environment variables" -}}
{{- end -}}
{{- if not (has .Values.commandSigning.mode (list "require" "warn" "off")) -}}
{{- fail (printf "commandSigning.mode must be require, warn or off, not %q" .Values.commandSigning.mode) -}}
{{- end -}}
{{- if and (ne .Values.commandSigning.mode "off") (not .Values.commandSigning.trustedKeysSecret) -}}
{{- fail "commandSigning.trustedKeysSecret must name the Secret holding jwks.json (the keys that sign commands), or set commandSigning.mode: off" -}}
{{- end -}}
{{- if and .Values.vaultAgent.enabled (not .Values.vaultAgent.templates) -}}
{{- fail "vaultAgent.enabled needs vaultAgent.templates: file name -> Vault agent template" -}}
{{- end -}}
{{- end -}}
