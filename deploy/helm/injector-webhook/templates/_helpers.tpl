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

{{/* The Secret of the CA: the chart's (generate) or cert-manager's self-signed one. */}}
{{- define "injector-webhook.caSecret" -}}
{{- printf "%s-ca" (include "injector-webhook.fullname" .) -}}
{{- end -}}

{{/* The Service's DNS names, which the serving certificate must carry. */}}
{{- define "injector-webhook.dnsNames" -}}
{{- $name := include "injector-webhook.fullname" . -}}
{{- $ns := .Release.Namespace -}}
{{- toJson (list (printf "%s.%s.svc" $name $ns) (printf "%s.%s" $name $ns) $name (printf "%s.%s.svc.cluster.local" $name $ns)) -}}
{{- end -}}

{{/*
Checks the TLS values and fails the render on an incomplete or contradictory
configuration, rather than rendering a webhook the API server cannot verify.
*/}}
{{- define "injector-webhook.checkTLS" -}}
{{- $tls := .Values.tls -}}
{{- $ann := .Values.webhook.annotations | default dict -}}
{{- $injected := or (hasKey $ann "cert-manager.io/inject-ca-from") (hasKey $ann "cert-manager.io/inject-ca-from-secret") -}}
{{- if $tls.certManager.enabled -}}
{{- if $tls.caBundle -}}
{{- fail "tls.caBundle: with tls.certManager.enabled, cert-manager injects the CA bundle; leave tls.caBundle empty" -}}
{{- end -}}
{{- if $injected -}}
{{- fail "webhook.annotations: with tls.certManager.enabled the chart sets cert-manager.io/inject-ca-from itself; remove yours" -}}
{{- end -}}
{{- with $tls.certManager.issuerRef -}}
{{- if not .name -}}
{{- fail "tls.certManager.issuerRef needs a name (and kind: Issuer or ClusterIssuer)" -}}
{{- end -}}
{{- end -}}
{{- else if $tls.existingSecret -}}
{{- if and (not $tls.caBundle) (not $injected) -}}
{{- fail "tls.existingSecret needs tls.caBundle (the PEM CA that signed it) or a cert-manager.io/inject-ca-from annotation in webhook.annotations: without a CA bundle the API server cannot verify the webhook and every labelled Pod is refused" -}}
{{- end -}}
{{- if and $tls.caBundle (not (contains "-----BEGIN CERTIFICATE-----" $tls.caBundle)) -}}
{{- fail "tls.caBundle must be PEM (-----BEGIN CERTIFICATE-----...), not base64 of it" -}}
{{- end -}}
{{- else if $tls.caBundle -}}
{{- fail "tls.caBundle is only used with tls.existingSecret; without it the chart generates the certificate and its CA bundle" -}}
{{- end -}}
{{- end -}}

{{/*
The generated CA and serving certificate, as a dict with keys caCrt, caKey,
crt, key (base64) and bundle (base64 PEM of the CAs the API server trusts).
The CA is kept in its own Secret and reused on upgrades (lookup), so the
caBundle stays the same while each upgrade issues a fresh serving
certificate from it. rotateCA makes a new CA; the bundle then holds the new
and the previous CA, so the serving certificate the Pods still use keeps
verifying until the kubelet delivers the new one. lookup is empty under
`helm template`, which therefore generates a new CA on every render.
*/}}
{{- define "injector-webhook.certs" -}}
{{- $gen := .Values.tls.generate -}}
{{- $caSecret := lookup "v1" "Secret" .Release.Namespace (include "injector-webhook.caSecret" .) -}}
{{- $tlsSecret := lookup "v1" "Secret" .Release.Namespace (include "injector-webhook.tlsSecret" .) -}}
{{- $caData := dig "data" dict ($caSecret | default dict) -}}
{{- $tlsData := dig "data" dict ($tlsSecret | default dict) -}}
{{- $ca := dict -}}
{{- $previous := "" -}}
{{- if and (index $caData "tls.crt") (index $caData "tls.key") (not $gen.rotateCA) -}}
{{- $ca = buildCustomCert (index $caData "tls.crt") (index $caData "tls.key") -}}
{{- else -}}
{{- $ca = genCA (printf "%s-ca" (include "injector-webhook.fullname" .)) (int $gen.caValidityDays) -}}
{{- /* The CA the running Pods' certificate was signed by: trusted until they reload. */ -}}
{{- $previous = index $caData "tls.crt" | default (index $tlsData "ca.crt") | default "" -}}
{{- end -}}
{{- $dns := include "injector-webhook.dnsNames" . | fromJsonArray -}}
{{- $cert := genSignedCert (first $dns) nil $dns (int $gen.certValidityDays) $ca -}}
{{- $bundle := $ca.Cert -}}
{{- with $previous -}}
{{- $old := b64dec . -}}
{{- if ne (trim $old) (trim $ca.Cert) -}}
{{- $bundle = printf "%s\n%s" (trim $ca.Cert) (trim $old) -}}
{{- end -}}
{{- end -}}
caCrt: {{ $ca.Cert | b64enc }}
caKey: {{ $ca.Key | b64enc }}
crt: {{ $cert.Cert | b64enc }}
key: {{ $cert.Key | b64enc }}
bundle: {{ $bundle | b64enc }}
{{- end -}}
