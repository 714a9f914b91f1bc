{{/* The release's full name, at most 63 characters. */}}
{{- define "agora.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "agora.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "agora.labels" -}}
{{ include "agora.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "agora.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "agora.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* mTLS: a plain port for probes and scrapes, which bring no client certificate. */}}
{{- define "agora.mtls" -}}
{{- if and .Values.tls.enabled .Values.tls.clientCA.existingSecret -}}true{{- end -}}
{{- end -}}

{{/* agora.yml, from the values. No secret is in it. */}}
{{- define "agora.config" -}}
listen: 0.0.0.0:8080
catalog: /etc/agora/catalog/catalog.yml
{{- if include "agora.mtls" . }}
probe_listen: 0.0.0.0:8081
{{- end }}
{{- if .Values.tls.enabled }}
tls:
  cert_file: /etc/agora/tls/tls.crt
  key_file: /etc/agora/tls/tls.key
  {{- if .Values.tls.clientCA.existingSecret }}
  client_ca_file: /etc/agora/client-ca/ca.crt
  client_auth: require
  {{- end }}
{{- end }}
redis:
  url: {{ .Values.redis.url | quote }}
  prefix: {{ .Values.redis.prefix | quote }}
vault:
  addr: {{ .Values.vault.addr | quote }}
  mount: {{ .Values.vault.mount | quote }}
  prefix: {{ .Values.vault.prefix | quote }}
  {{- if .Values.vault.caConfigMap }}
  ca_cert: /etc/agora/vault-ca/ca.crt
  {{- end }}
  auth: {{ .Values.vault.auth }}
  {{- if eq .Values.vault.auth "kubernetes" }}
  kubernetes:
    role: {{ .Values.vault.kubernetes.role | quote }}
    mount: {{ .Values.vault.kubernetes.mount | quote }}
  {{- else if eq .Values.vault.auth "approle" }}
  approle:
    role_id: {{ .Values.vault.approle.roleId | quote }}
    secret_id_file: /etc/agora/approle/secret-id
    mount: {{ .Values.vault.approle.mount | quote }}
  {{- end }}
{{ toYaml .Values.config }}
{{- end -}}
