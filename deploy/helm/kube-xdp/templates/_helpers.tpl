{{- /*
Go text/template built-ins only (no sprig: no toYaml, nindent, quote, default, include), so
that test/unit/helm-chart.test.ts renders these templates with Go's own text/template. Values
that are maps or lists are written as JSON flow collections on one line (JSON is YAML), which
needs no re-indentation; every scalar is quoted or typed by the "kube-xdp.json" helper.
*/ -}}

{{- /* A value as JSON (valid YAML flow): maps (keys sorted), lists, strings (Go-quoted, which
YAML double-quoted strings read), numbers, booleans, null. Types by name: values.yaml gives
map[string]interface {} and []interface {}; --set can give int64. */ -}}
{{- define "kube-xdp.json" -}}
{{- $t := printf "%T" . -}}
{{- if eq $t "map[string]interface {}" "chartutil.Values" -}}
{{- $sep := "" -}}
{ {{- range $k, $v := . -}}{{ $sep }}{{ printf "%q" $k }}: {{ template "kube-xdp.json" $v }}{{ $sep = ", " }}{{- end -}} }
{{- else if eq $t "[]interface {}" -}}
[ {{- range $i, $v := . -}}{{ if $i }}, {{ end }}{{ template "kube-xdp.json" $v }}{{- end -}} ]
{{- else if eq $t "string" -}}
{{ printf "%q" . }}
{{- else if eq $t "<nil>" -}}
null
{{- else -}}
{{ printf "%v" . }}
{{- end -}}
{{- end -}}

{{- /* A comma-separated list as one quoted string: from a string (as is) or a list. */ -}}
{{- define "kube-xdp.csv" -}}
{{- if eq (printf "%T" .) "string" -}}
{{ printf "%q" . }}
{{- else -}}
{{- $s := "" -}}
{{- range $i, $v := . -}}
{{- if $i }}{{ $s = printf "%s,%v" $s $v }}{{ else }}{{ $s = printf "%v" $v }}{{ end -}}
{{- end -}}
{{ printf "%q" $s }}
{{- end -}}
{{- end -}}

{{- /* A scalar as a quoted string, whatever its type (a command-line word, a capability). */ -}}
{{- define "kube-xdp.str" -}}
{{ printf "%q" (printf "%v" .) }}
{{- end -}}

{{- /* The image: repository:tag, tag defaulting to the chart's appVersion. */ -}}
{{- define "kube-xdp.image" -}}
{{- if .Values.image.tag -}}
{{ printf "%q" (printf "%v:%v" .Values.image.repository .Values.image.tag) }}
{{- else -}}
{{ printf "%q" (printf "%v:%v" .Values.image.repository .Chart.AppVersion) }}
{{- end -}}
{{- end -}}

{{- /* The selector (immutable: keep it as deploy/kube-xdp.yaml has it). */ -}}
{{- define "kube-xdp.selectorLabels" -}}
{{ printf "%q" "app.kubernetes.io/name" }}: {{ printf "%q" .Chart.Name }}
{{- end -}}

{{- /* Every object's labels, as a flow map. */ -}}
{{- define "kube-xdp.labels" -}}
{ {{- template "kube-xdp.selectorLabels" . -}}
, "app.kubernetes.io/instance": {{ printf "%q" .Release.Name -}}
, "app.kubernetes.io/version": {{ printf "%q" .Chart.AppVersion -}}
, "app.kubernetes.io/managed-by": {{ printf "%q" .Release.Service -}}
, "helm.sh/chart": {{ printf "%q" (printf "%v-%v" .Chart.Name .Chart.Version) -}}
}
{{- end -}}
