{{- define "injector-webhook.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "injector-webhook.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "injector-webhook.labels" -}}
{{ include "injector-webhook.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "injector-webhook.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The injector image the webhook puts into Pods. */}}
{{- define "injector-webhook.injectorImage" -}}
{{- printf "%s:%s" .Values.injectorImage.repository (default .Chart.AppVersion .Values.injectorImage.tag) -}}
{{- end -}}

{{- define "injector-webhook.tlsSecret" -}}
{{- default (printf "%s-tls" (include "injector-webhook.fullname" .)) .Values.tls.existingSecret -}}
{{- end -}}

{{/*
The generated CA and serving certificate, as a dict with keys ca, crt, key.
An existing Secret is reused so upgrades do not rotate the CA (lookup is
empty under `helm template`, which then generates a fresh pair).
*/}}
{{- define "injector-webhook.certs" -}}
{{- $name := include "injector-webhook.fullname" . -}}
{{- $secret := lookup "v1" "Secret" .Release.Namespace (include "injector-webhook.tlsSecret" .) -}}
{{- if and $secret (index $secret.data "ca.crt") -}}
ca: {{ index $secret.data "ca.crt" }}
crt: {{ index $secret.data "tls.crt" }}
key: {{ index $secret.data "tls.key" }}
{{- else -}}
{{- $ca := genCA (printf "%s-ca" $name) (int .Values.tls.validityDays) -}}
{{- $svc := printf "%s.%s.svc" $name .Release.Namespace -}}
{{- $cert := genSignedCert $svc nil (list $svc (printf "%s.%s" $name .Release.Namespace) $name) (int .Values.tls.validityDays) $ca -}}
ca: {{ $ca.Cert | b64enc }}
crt: {{ $cert.Cert | b64enc }}
key: {{ $cert.Key | b64enc }}
{{- end -}}
{{- end -}}
