{{/* The chart's name. */}}
{{- define "maestro-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name: object names start with it. */}}
{{- define "maestro-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "maestro-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "maestro-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "maestro-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: controller-manager
{{- end }}

{{- define "maestro-operator.labels" -}}
helm.sh/chart: {{ include "maestro-operator.chart" . }}
{{ include "maestro-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: maestro-operator
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "maestro-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "maestro-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "maestro-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "maestro-operator.leaseName" -}}
{{- default (include "maestro-operator.fullname" .) .Values.leaderElection.leaseName }}
{{- end }}

{{/* RUST_LOG: the operator's own level over quiet dependencies. */}}
{{- define "maestro-operator.logFilter" -}}
{{- if .Values.log.filter }}
{{- .Values.log.filter }}
{{- else }}
{{- printf "info,maestro_operator=%s,kube_runtime=warn" .Values.log.level }}
{{- end }}
{{- end }}

{{/* Where the Secrets are mounted. */}}
{{- define "maestro-operator.certsDir" -}}/etc/maestro/certs{{- end }}
{{- define "maestro-operator.tokenDir" -}}/etc/maestro/token{{- end }}
