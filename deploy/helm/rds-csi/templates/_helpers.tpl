{{/* Labels shared with deploy/kubernetes: the chart adds no Helm-specific
labels, so its output equals the kustomize overlays object for object. */}}
{{- define "rds-csi.labels" -}}
app.kubernetes.io/name: rds-csi
app.kubernetes.io/part-of: rds-csi
{{- end -}}

{{- define "rds-csi.componentLabels" -}}
app.kubernetes.io/name: rds-csi
app.kubernetes.io/part-of: rds-csi
app.kubernetes.io/component: {{ . }}
{{- end -}}

{{- define "rds-csi.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag }}
{{- end -}}

{{- define "rds-csi.distrolessImage" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag }}{{ .Values.image.distrolessSuffix }}
{{- end -}}

{{/* The CSI socket's directory on the node, named after the driver. */}}
{{- define "rds-csi.pluginDir" -}}
{{ .Values.node.kubeletDir }}/plugins/rds.csi.mikrotik.com
{{- end -}}

{{- define "rds-csi.configEnv" -}}
- name: {{ .env }}
  valueFrom:
    configMapKeyRef:
      name: rds-csi-config
      key: {{ .key }}
{{- end -}}

{{- define "rds-csi.podNamespaceEnv" -}}
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
{{- end -}}

{{- define "rds-csi.restrictedContainer" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
{{- end -}}
