{{/* Names, labels and small computed values shared by the templates. */}}

{{- define "kascade.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's full name: "<release>-kascade", or the release name when it already
contains the chart name. Cluster-scoped objects carry it too, so two releases of the same
name in different namespaces would collide: Helm refuses the second install. */}}
{{- define "kascade.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "kascade.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "kascade.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kascade.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "kascade.labels" -}}
helm.sh/chart: {{ include "kascade.chart" . }}
{{ include "kascade.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: kascade
{{- end -}}

{{- define "kascade.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "kascade.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "kascade.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "kascade.runtimeImage" -}}
{{- printf "%s:%s" .Values.runtimeImage.repository (default .Chart.AppVersion .Values.runtimeImage.tag) -}}
{{- end -}}

{{/* Peering is on with more than one replica: one works, the others stand by. */}}
{{- define "kascade.peering" -}}
{{- if gt (int .Values.replicaCount) 1 -}}
{{- default (include "kascade.fullname" .) .Values.peering.name -}}
{{- end -}}
{{- end -}}

{{- define "kascade.metricsServiceName" -}}
{{- printf "%s-metrics" (include "kascade.fullname" . | trunc 55 | trimSuffix "-") -}}
{{- end -}}

{{/* The `job` label Prometheus gives the operator's target (a ServiceMonitor names the
job after the Service it selects). */}}
{{- define "kascade.metricsJob" -}}
{{- default (include "kascade.metricsServiceName" .) .Values.prometheusRule.job -}}
{{- end -}}

{{/* The rules of the operator: what kopf and the handlers read and write, nothing more.
No Secrets: tasks get theirs through env/envFrom references the Job's pod resolves. */}}
{{- define "kascade.namespacedRules" -}}
- apiGroups: ["kascade.io"]
  resources: ["flows"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["kascade.io"]
  resources: ["runs", "tasks"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["kascade.io"]
  resources: ["flows/status", "runs/status", "tasks/status"]
  verbs: ["get", "patch"]
# Runs own Tasks, Tasks own Jobs and child Runs, with blockOwnerDeletion: where the
# OwnerReferencesPermissionEnforcement admission plugin is on, that needs this.
- apiGroups: ["kascade.io"]
  resources: ["runs/finalizers", "tasks/finalizers"]
  verbs: ["update"]
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "list", "watch", "create", "delete"]
- apiGroups: [""]
  resources: ["pods", "configmaps"]
  verbs: ["get", "list", "watch"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
{{- end -}}

{{/* podLabels, refusing to redefine the chart's own labels (the selector uses them). */}}
{{- define "kascade.podLabels" -}}
{{- $own := fromYaml (include "kascade.labels" .) -}}
{{- range $key, $value := .Values.podLabels -}}
{{- if or (hasKey $own $key) (eq $key "app.kubernetes.io/component") -}}
{{- fail (printf "podLabels: %q is set by the chart and cannot be overridden" $key) -}}
{{- end -}}
{{- end -}}
{{- with .Values.podLabels -}}
{{- toYaml . -}}
{{- end -}}
{{- end -}}

{{/* kopf's discovery: it lists and watches CRDs and namespaces (cluster-scoped) and
falls back with warnings without them. */}}
{{- define "kascade.discoveryRules" -}}
- apiGroups: ["apiextensions.k8s.io"]
  resources: ["customresourcedefinitions"]
  verbs: ["get", "list", "watch"]
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["get", "list", "watch"]
{{- end -}}

{{/* kopf peering: watch every peering object of the kind, write only ours.
Argument: (list $ "clusterkopfpeerings"|"kopfpeerings"). */}}
{{- define "kascade.peeringRules" -}}
{{- $root := index . 0 -}}
{{- $resource := index . 1 -}}
- apiGroups: ["kopf.dev"]
  resources: [{{ $resource | quote }}]
  verbs: ["list", "watch"]
- apiGroups: ["kopf.dev"]
  resources: [{{ $resource | quote }}]
  resourceNames: [{{ include "kascade.peering" $root | quote }}]
  verbs: ["get", "patch"]
{{- end -}}

{{/* The chart's labels plus extra ones from values (the chart's win on a clash).
Argument: (list $ extraLabels). */}}
{{- define "kascade.labelsWith" -}}
{{- $root := index . 0 -}}
{{- $labels := merge (dict) (fromYaml (include "kascade.labels" $root)) (index . 1 | default dict) -}}
{{- toYaml $labels -}}
{{- end -}}

{{- define "kascade.subject" -}}
- kind: ServiceAccount
  name: {{ include "kascade.serviceAccountName" . }}
  namespace: {{ .Release.Namespace }}
{{- end -}}
