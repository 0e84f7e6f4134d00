{{/*
The images' ports, fixed by their contract (versions.env in the repository; a unit test checks these):
gunicorn in the web container, nginx in the sidecar, the built-in Redis. The pod, its probes, nginx's
upstream and the Services all use these, and values that would move gunicorn elsewhere are refused.
*/}}
{{- define "omero-web.webPort" -}}4080{{- end }}
{{- define "omero-web.nginxPort" -}}8080{{- end }}
{{- define "omero-web.redisPort" -}}6379{{- end }}

{{/* Names: every object carries the release name, so two releases in one namespace never collide. */}}
{{- define "omero-web.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "omero-web.fullname" -}}
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

{{- define "omero-web.redisName" -}}
{{- printf "%s-redis" (include "omero-web.fullname" . | trunc 57 | trimSuffix "-") }}
{{- end }}

{{- define "omero-web.serviceAccountName" -}}
{{- default (include "omero-web.fullname" .) .Values.serviceAccount.name }}
{{- end }}

{{- define "omero-web.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "omero-web.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: omero-web
{{- end }}

{{- define "omero-web.selectorLabels" -}}
app.kubernetes.io/name: {{ include "omero-web.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: web
{{- end }}

{{- define "omero-web.redisSelectorLabels" -}}
app.kubernetes.io/name: {{ include "omero-web.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: redis
{{- end }}

{{- define "omero-web.image" -}}
{{- $registry := .image.registry | trimSuffix "/" }}
{{- $ref := printf "%s:%s" .image.repository (.image.tag | default .appVersion | toString) }}
{{- if $registry }}{{ printf "%s/%s" $registry $ref }}{{ else }}{{ $ref }}{{ end }}
{{- end }}

{{/* The URL prefix without a trailing slash ("" for none); probes and the Ingress path use it. */}}
{{- define "omero-web.prefix" -}}
{{- .Values.prefix | trimSuffix "/" }}
{{- end }}

{{/* Pods serving users: replicaCount, or the autoscaler's minimum. */}}
{{- define "omero-web.minReplicas" -}}
{{- if .Values.autoscaling.enabled }}{{ .Values.autoscaling.minReplicas }}{{ else }}{{ .Values.replicaCount }}{{ end }}
{{- end }}

{{/* Redis: built in, external, or none ("" when none). */}}
{{- define "omero-web.redisUrl" -}}
{{- if .Values.redis.enabled }}
{{- printf "redis://%s:%s/0" (include "omero-web.redisName" .) (include "omero-web.redisPort" .) }}
{{- else }}
{{- .Values.externalRedis.url }}
{{- end }}
{{- end }}

{{/*
Secrets. An explicit value (secretKey, redis.password, externalRedis.password) is rendered into the
release's Secret (fullname). An existing Secret you name is mounted as it is. Anything else is
generated in the cluster, once, by the hook Job of secrets-job.yaml into the Secret
"omero-web.generatedSecret", which no render contains: helm upgrade, helm template | kubectl
apply, Argo CD and Flux never overwrite it, and the pods' checksums never see a random value.
*/}}
{{- define "omero-web.generatedSecret" -}}
{{- printf "%s-generated" (include "omero-web.fullname" . | trunc 53 | trimSuffix "-") }}
{{- end }}

{{/* The keys the Job generates, "key=length" separated by spaces (empty: none). */}}
{{- define "omero-web.generatedKeys" -}}
{{- $keys := list }}
{{- if not (or .Values.existingSecret .Values.secretKey) }}{{ $keys = append $keys "secret-key=50" }}{{ end }}
{{- if and .Values.redis.enabled (not (or .Values.redis.existingSecret .Values.redis.password)) }}{{ $keys = append $keys "redis-password=32" }}{{ end }}
{{- join " " $keys }}
{{- end }}

{{/* Where the web container finds the secret key and the Redis password (files, never env values). */}}
{{- define "omero-web.secretKeySecret" -}}
{{- if .Values.existingSecret }}{{ .Values.existingSecret }}
{{- else if .Values.secretKey }}{{ include "omero-web.fullname" . }}
{{- else }}{{ include "omero-web.generatedSecret" . }}
{{- end }}
{{- end }}

{{- define "omero-web.redisPasswordSecret" -}}
{{- if .Values.redis.enabled }}
{{- if .Values.redis.existingSecret }}{{ .Values.redis.existingSecret }}
{{- else if .Values.redis.password }}{{ include "omero-web.fullname" . }}
{{- else }}{{ include "omero-web.generatedSecret" . }}
{{- end }}
{{- else }}
{{- .Values.externalRedis.existingSecret | default (include "omero-web.fullname" .) }}
{{- end }}
{{- end }}

{{- define "omero-web.redisPasswordKey" -}}
{{- if and (not .Values.redis.enabled) .Values.externalRedis.existingSecret }}
{{- .Values.externalRedis.existingSecretPasswordKey }}
{{- else }}
{{- "redis-password" }}
{{- end }}
{{- end }}

{{/*
Pod template labels: the selector's and the release's, never the chart or app version, so that a
new chart version alone restarts no pod (a restarted built-in Redis logs every user out).
*/}}
{{- define "omero-web.podLabels" -}}
app.kubernetes.io/name: {{ include "omero-web.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: omero-web
{{- end }}

{{/* true when the web pods get a Redis password file */}}
{{- define "omero-web.redisHasPassword" -}}
{{- if .Values.redis.enabled }}true
{{- else if and .Values.externalRedis.url (or .Values.externalRedis.password .Values.externalRedis.existingSecret) }}true
{{- end }}
{{- end }}

{{/* true when nginx serves /omero-ws with a CA bundle of the release's (a ConfigMap or Secret) */}}
{{- define "omero-web.omeroWsCa" -}}
{{- with .Values.nginx.omeroWs }}
{{- if and .url (or .ca.configMap .ca.secret) }}true{{ end }}
{{- end }}
{{- end }}

{{/* Settings the values ask for, checked before anything is rendered. */}}
{{- define "omero-web.validate" -}}
{{- if and .Values.existingSecret .Values.secretKey }}
{{- fail "set secretKey or existingSecret, not both (existingSecret: a Secret of yours with the key secret-key)" }}
{{- end }}
{{- if and .Values.redis.existingSecret .Values.redis.password }}
{{- fail "set redis.password or redis.existingSecret, not both (redis.existingSecret: a Secret of yours with the key redis-password)" }}
{{- end }}
{{- if and .Values.public.existingSecret .Values.public.password }}
{{- fail "set public.password or public.existingSecret, not both (public.existingSecret: a Secret of yours with the key public.existingSecretPasswordKey)" }}
{{- end }}
{{- if and .Values.public.user (not (or .Values.public.existingSecret .Values.public.password)) }}
{{- fail "public.user needs the public user's password: set public.existingSecret (a Secret of yours with the key public.existingSecretPasswordKey) or public.password" }}
{{- end }}
{{- if and .Values.nginx.cache.enabled (not .Values.public.user) }}
{{- fail "nginx.cache.enabled caches the images of a public data site: set public.user (and its password) too, or leave the cache off" }}
{{- end }}
{{- if and (not .Values.public.user) (or .Values.public.existingSecret .Values.public.password) }}
{{- fail "public.existingSecret or public.password is set but public.user is not: set the public user's name too, or neither" }}
{{- end }}
{{- if and .Values.omeroHost .Values.serverList }}
{{- fail "set omeroHost or serverList, not both (serverList is the full list; omeroHost a single server)" }}
{{- end }}
{{- if and .Values.redis.enabled .Values.externalRedis.url }}
{{- fail "externalRedis.url is set while redis.enabled=true: set redis.enabled=false to use your own Redis" }}
{{- end }}
{{- if and (gt (int (include "omero-web.minReplicas" .)) 1) (not (include "omero-web.redisUrl" .)) }}
{{- fail "more than one pod needs shared sessions: keep redis.enabled=true or set externalRedis.url" }}
{{- end }}
{{- if and .Values.autoscaling.enabled (not (dig "requests" "cpu" "" .Values.resources.web)) }}
{{- fail "autoscaling on CPU needs resources.web.requests.cpu" }}
{{- end }}
{{- if and .Values.nginx.omeroWs.ca.configMap .Values.nginx.omeroWs.ca.secret }}
{{- fail "set nginx.omeroWs.ca.configMap or nginx.omeroWs.ca.secret, not both (the one that holds OMERO.server's CA bundle)" }}
{{- end }}
{{- if and .Values.prefix (not (hasPrefix "/" .Values.prefix)) }}
{{- fail (printf "prefix %q must start with /, e.g. /omero" .Values.prefix) }}
{{- end }}
{{- /* Settings the pod's other parts depend on: refused in config and in extraEnv, by name. */}}
{{- $port := include "omero-web.webPort" . }}
{{- $why := printf "gunicorn must listen on 0.0.0.0:%s in the pod: nginx beside it connects to 127.0.0.1:%s, the probes and the container port use %s" $port $port $port }}
{{- $fixed := dict "omero.web.application_server.host" $why "omero.web.application_server.port" $why "omero.web.application_server" "the pod runs gunicorn (wsgi-tcp), which nginx and the probes talk to" "omero.web.prefix" "use the value prefix: nginx, the probes and the Ingress follow it" }}
{{- range $key := keys $fixed | sortAlpha }}
{{- if hasKey $.Values.config $key }}
{{- fail (printf "config.%s cannot be set in this chart (%s); remove it" $key (get $fixed $key)) }}
{{- end }}
{{- $name := printf "CONFIG_%s" ($key | replace "_" "__" | replace "." "_") }}
{{- range $.Values.extraEnv }}
{{- if eq .name $name }}
{{- fail (printf "extraEnv %s cannot be set in this chart (%s); remove it" $name (get $fixed $key)) }}
{{- end }}
{{- end }}
{{- end }}
{{- /* Settings that have a value of their own. */}}
{{- $dedicated := dict "omero.web.secret_key" "secretKey or existingSecret (kept in a Secret)" "omero.web.server_list" "serverList" "omero.web.caches" "redis or externalRedis" "omero.web.session_engine" "redis or externalRedis" "omero.web.cors_origin_whitelist" "cors.origins" "omero.web.cors_origin_allow_all" "cors.allowAll" }}
{{- range $key := keys .Values.config | sortAlpha }}
{{- if hasKey $dedicated $key }}
{{- fail (printf "config.%s: use %s instead" $key (get $dedicated $key)) }}
{{- end }}
{{- end }}
{{- range .Values.extraEnv }}
{{- if eq .name "OMERO_WEB_PREFIX" }}
{{- fail "extraEnv OMERO_WEB_PREFIX cannot be set in this chart: use the value prefix (nginx, the probes and the Ingress follow it)" }}
{{- end }}
{{- end }}
{{- end }}
