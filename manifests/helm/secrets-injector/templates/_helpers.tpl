{{/* Name of the release's resources: the release name, unless it lacks the chart name. */}}
{{- define "secrets-injector.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* The webhook's Deployment, Service, ServiceAccount and serving certificate. */}}
{{- define "secrets-injector.webhookName" -}}
{{- printf "%s-webhook" (include "secrets-injector.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "secrets-injector.tlsSecretName" -}}
{{- if and (eq .Values.certificate.mode "existingSecret") .Values.certificate.existingSecret.name -}}
{{- .Values.certificate.existingSecret.name -}}
{{- else -}}
{{- printf "%s-tls" (include "secrets-injector.fullname" .) -}}
{{- end -}}
{{- end -}}

{{- define "secrets-injector.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: webhook
{{- end -}}

{{- define "secrets-injector.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: {{ .Chart.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "secrets-injector.image" -}}
{{- $tag := .image.tag | default .appVersion -}}
{{- if hasPrefix "sha256:" $tag -}}
{{- printf "%s@%s" .image.repository $tag -}}
{{- else -}}
{{- printf "%s:%s" .image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* Namespaces never sent to the webhook: the control plane's and the webhook's own, always. */}}
{{- define "secrets-injector.excludedNamespaces" -}}
{{- $all := concat (list "kube-system" .Release.Namespace) .Values.excludedNamespaces | uniq -}}
{{- toYaml $all -}}
{{- end -}}

{{/*
Whether the webhook reads SecretProviderClasses ("true" or empty): the value, or CSI volumes
rewritten, which need the classes.
*/}}
{{- define "secrets-injector.readsClasses" -}}
{{- if or .Values.secretProviderClasses.enabled (eq .Values.secretProviderClasses.csiVolumes "rewrite") -}}
true
{{- end -}}
{{- end }}
