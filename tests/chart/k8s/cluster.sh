#!/usr/bin/env bash
# A single-node Kubernetes for the chart tests, from the binaries of build.sh, beside Docker:
#   cluster.sh up [IMAGE...]   start it (root), import the images from `docker save`, wait for DNS;
#                              KUBERNETES=oldest|newest (default newest) picks versions.env's version;
#                              OWK8S_REGISTRY=127.0.0.1:PORT lets containerd pull from that plain-HTTP
#                              registry (the release test's), its credentials from imagePullSecrets
#   cluster.sh down            stop and remove everything `up` made; Docker keeps working
#   cluster.sh env             print the KUBECONFIG line for a shell
# Everything of its own: containerd (own socket and directories), a bridge holding the node
# address, the pod and service ranges routed into it, KUBE-*/CNI-* iptables chains. Components
# listen on loopback or on the node address only; tests reach services through 127.0.0.1.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
STATE=/var/lib/owk8s          # etcd data, containerd root, PKI, kubeconfigs, pids, sysctls
RUN=/run/owk8s                # sockets and containerd state
LOGS=$STATE/logs
NODE=owk8s-node
NODE_BRIDGE=owk8s0
NODE_IP=10.240.0.1
POD_CIDR=10.244.0.0/24
SERVICE_CIDR=10.96.0.0/16
API_IP=10.96.0.1
DNS_IP=10.96.0.10
CNI_BRIDGE=owk8s-cni0
CNI_BIN=/usr/lib/cni
SYSCTLS="vm.overcommit_memory kernel.panic kernel.panic_on_oops net.ipv4.conf.all.route_localnet net.bridge.bridge-nf-call-iptables net.ipv4.ip_forward"
export KUBECONFIG=$STATE/admin.kubeconfig

log() { echo "owk8s: $*" >&2; }
die() { echo "owk8s: $*" >&2; exit 1; }

start() {  # name command... : background process, pid in $STATE/pids/name, log in $LOGS/name.log
    local name=$1; shift
    "$@" >"$LOGS/$name.log" 2>&1 &
    echo $! > "$STATE/pids/$name"
}

wait_for() {  # seconds description command...
    local seconds=$1 what=$2; shift 2
    local deadline=$((SECONDS + seconds))
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -lt $deadline ] || die "$what not ready after ${seconds}s (logs: $LOGS)"
        sleep 0.5
    done
}

pki() {
    local dir=$STATE/pki
    mkdir -p "$dir" && cd "$dir"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=owk8s-ca" -keyout ca.key -out ca.crt 2>/dev/null
    openssl genrsa -out sa.key 2048 2>/dev/null && openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
    cert() {  # name subject [subjectAltName]
        openssl req -newkey rsa:2048 -nodes -subj "$2" -keyout "$1.key" -out "$1.csr" 2>/dev/null
        local ext=""
        [ -n "${3:-}" ] && printf 'subjectAltName=%s\n' "$3" > "$1.ext" && ext="-extfile $1.ext"
        # shellcheck disable=SC2086
        openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -out "$1.crt" $ext 2>/dev/null
    }
    cert apiserver "/CN=kube-apiserver" \
        "IP:$NODE_IP,IP:$API_IP,IP:127.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost"
    cert admin "/O=system:masters/CN=owk8s-admin"
    cert controller-manager "/CN=system:kube-controller-manager"
    cert scheduler "/CN=system:kube-scheduler"
    cert kubelet "/O=system:nodes/CN=system:node:$NODE"
    cert proxy "/CN=system:kube-proxy"
    cert apiserver-kubelet "/O=system:masters/CN=kube-apiserver-kubelet-client"
    for name in admin controller-manager scheduler kubelet proxy; do
        cat > "$STATE/$name.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters: [{name: owk8s, cluster: {server: "https://$NODE_IP:6443", certificate-authority: $dir/ca.crt}}]
users: [{name: $name, user: {client-certificate: $dir/$name.crt, client-key: $dir/$name.key}}]
contexts: [{name: owk8s, context: {cluster: owk8s, user: $name, namespace: default}}]
current-context: owk8s
EOF
    done
    cd - >/dev/null
}

network() {
    ip link add "$NODE_BRIDGE" type bridge
    ip addr add "$NODE_IP/32" dev "$NODE_BRIDGE"
    ip link set "$NODE_BRIDGE" up
    # Service addresses never leave the machine: unanswered, they end in this port-less bridge.
    ip route add "$SERVICE_CIDR" dev "$NODE_BRIDGE"
    mkdir -p "$STATE/cni"
    cat > "$STATE/cni/10-owk8s.conflist" <<EOF
{"cniVersion": "1.0.0", "name": "owk8s", "plugins": [
  {"type": "bridge", "bridge": "$CNI_BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "$POD_CIDR"}]], "routes": [{"dst": "0.0.0.0/0"}],
            "dataDir": "$STATE/cni/ipam"}},
  {"type": "firewall", "backend": "iptables"},
  {"type": "portmap", "capabilities": {"portMappings": true}}
]}
EOF
}

containerd_config() {
    cat > "$STATE/containerd.toml" <<EOF
version = 2
root = "$STATE/containerd"
state = "$RUN/containerd"
[grpc]
  address = "$RUN/containerd.sock"
[ttrpc]
  address = "$RUN/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$STATE/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:owk8s"
  restrict_oom_score_adj = true
  enable_cdi = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CNI_BIN"
    conf_dir = "$STATE/cni"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$STATE/certs.d"
EOF
    # Registry hosts (containerd's hosts.toml): none but OWK8S_REGISTRY's, spoken to over plain HTTP.
    mkdir -p "$STATE/certs.d"
    if [ -n "${OWK8S_REGISTRY:-}" ]; then
        case $OWK8S_REGISTRY in 127.0.0.1:*) ;; *) die "OWK8S_REGISTRY=$OWK8S_REGISTRY: only a registry on 127.0.0.1:PORT" ;; esac
        mkdir -p "$STATE/certs.d/$OWK8S_REGISTRY"
        cat > "$STATE/certs.d/$OWK8S_REGISTRY/hosts.toml" <<EOF
server = "http://$OWK8S_REGISTRY"
[host."http://$OWK8S_REGISTRY"]
  capabilities = ["pull", "resolve"]
EOF
    fi
}

kubelet_config() {
    printf 'nameserver %s\nsearch default.svc.cluster.local svc.cluster.local cluster.local\n' "$DNS_IP" > "$STATE/resolv.conf"
    cat > "$STATE/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: $STATE/pki/ca.crt}
authorization: {mode: AlwaysAllow}
cgroupDriver: cgroupfs
$( [ "$MINOR" -ge 31 ] && echo "failCgroupV1: false" )
failSwapOn: false
containerRuntimeEndpoint: unix://$RUN/containerd.sock
clusterDNS: [$DNS_IP]
clusterDomain: cluster.local
resolvConf: $STATE/resolv.conf
protectKernelDefaults: false
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
EOF
}

coredns_manifest() {
    cat <<EOF
apiVersion: v1
kind: ServiceAccount
metadata: {name: coredns, namespace: kube-system}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "system:coredns"}
rules:
  - {apiGroups: [""], resources: [endpoints, services, pods, namespaces], verbs: [list, watch]}
  - {apiGroups: [discovery.k8s.io], resources: [endpointslices], verbs: [list, watch]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "system:coredns"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:coredns"}
subjects: [{kind: ServiceAccount, name: coredns, namespace: kube-system}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: coredns, namespace: kube-system}
data:
  # Cluster names only (nothing is forwarded outside); a short cache, so a release reinstalled
  # under the same name resolves its new addresses at once.
  Corefile: |
    .:1053 {
        errors
        health :8080
        ready :8181
        kubernetes cluster.local in-addr.arpa ip6.arpa {
            pods insecure
            fallthrough in-addr.arpa ip6.arpa
            ttl 5
        }
        cache 5
        loop
        reload
    }
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: coredns, namespace: kube-system, labels: {k8s-app: kube-dns}}
spec:
  replicas: 1
  selector: {matchLabels: {k8s-app: kube-dns}}
  template:
    metadata: {labels: {k8s-app: kube-dns}}
    spec:
      serviceAccountName: coredns
      containers:
        - name: coredns
          image: registry.k8s.io/coredns/coredns:owk8s
          imagePullPolicy: Never
          args: ["-conf", "/etc/coredns/Corefile"]
          securityContext:  # a non-root port: added capabilities do not reach a non-root process
            allowPrivilegeEscalation: false
            capabilities: {drop: [ALL]}
            readOnlyRootFilesystem: true
          ports:
            - {name: dns, containerPort: 1053, protocol: UDP}
            - {name: dns-tcp, containerPort: 1053, protocol: TCP}
          readinessProbe: {httpGet: {path: /ready, port: 8181}, periodSeconds: 2}
          volumeMounts: [{name: config, mountPath: /etc/coredns, readOnly: true}]
      volumes: [{name: config, configMap: {name: coredns}}]
---
apiVersion: v1
kind: Service
metadata: {name: kube-dns, namespace: kube-system, labels: {k8s-app: kube-dns}}
spec:
  clusterIP: $DNS_IP
  selector: {k8s-app: kube-dns}
  ports:
    - {name: dns, port: 53, targetPort: dns, protocol: UDP}
    - {name: dns-tcp, port: 53, targetPort: dns-tcp, protocol: TCP}
EOF
}

up() {
    [ "$(id -u)" = 0 ] || die "run as root"
    [ ! -e "$STATE" ] || die "$STATE exists: a cluster is up (or left over); run '$0 down' first"
    for command in openssl ip iptables conntrack; do
        command -v "$command" >/dev/null || die "$command is missing (apt-get install iproute2 iptables conntrack openssl)"
    done
    [ -x "$CNI_BIN/bridge" ] || die "CNI plugins are missing (apt-get install containernetworking-plugins)"
    BIN=$("$HERE/build.sh")/bin
    MINOR=$("$BIN/kubectl" version --client -o json | sed -n 's/.*"minor": *"\([0-9]*\).*/\1/p' | head -n 1)
    local images_dir
    images_dir=$(dirname "$BIN")/images
    mkdir -p "$STATE/pids" "$LOGS" "$RUN"
    echo "$BIN" > "$STATE/bin"
    for name in $SYSCTLS; do echo "$name=$(sysctl -n "$name" 2>/dev/null || echo '')"; done > "$STATE/sysctls"
    log "PKI, network, containerd"
    pki
    network
    containerd_config
    kubelet_config
    start containerd containerd --config "$STATE/containerd.toml"
    wait_for 30 containerd ctr --address "$RUN/containerd.sock" version
    for image in "$images_dir"/*.tar; do
        ctr --address "$RUN/containerd.sock" -n k8s.io images import "$image" >/dev/null
    done
    load_images "$@"

    log "etcd, control plane"
    start etcd "$BIN/etcd" --data-dir "$STATE/etcd" --listen-client-urls http://127.0.0.1:2379 \
        --advertise-client-urls http://127.0.0.1:2379 --listen-peer-urls http://127.0.0.1:2380 \
        --initial-advertise-peer-urls http://127.0.0.1:2380 --initial-cluster default=http://127.0.0.1:2380 \
        --listen-metrics-urls http://127.0.0.1:2381
    local pki=$STATE/pki
    start kube-apiserver "$BIN/kube-apiserver" --etcd-servers http://127.0.0.1:2379 \
        --bind-address "$NODE_IP" --advertise-address "$NODE_IP" --secure-port 6443 \
        --service-cluster-ip-range "$SERVICE_CIDR" --client-ca-file "$pki/ca.crt" \
        --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
        --kubelet-client-certificate "$pki/apiserver-kubelet.crt" --kubelet-client-key "$pki/apiserver-kubelet.key" \
        --service-account-issuer https://kubernetes.default.svc.cluster.local \
        --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
        --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
        --kubelet-preferred-address-types InternalIP --allow-privileged=false --profiling=false
    wait_for 60 kube-apiserver "$BIN/kubectl" get --raw /readyz
    start kube-controller-manager "$BIN/kube-controller-manager" \
        --kubeconfig "$STATE/controller-manager.kubeconfig" --bind-address 127.0.0.1 \
        --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
        --cluster-signing-cert-file "$pki/ca.crt" --cluster-signing-key-file "$pki/ca.key" \
        --use-service-account-credentials --service-cluster-ip-range "$SERVICE_CIDR" --profiling=false
    start kube-scheduler "$BIN/kube-scheduler" --kubeconfig "$STATE/scheduler.kubeconfig" \
        --bind-address 127.0.0.1 --profiling=false

    log "kubelet, kube-proxy"
    start kubelet "$BIN/kubelet" --config "$STATE/kubelet.yaml" --kubeconfig "$STATE/kubelet.kubeconfig" \
        --hostname-override "$NODE" --node-ip "$NODE_IP" --root-dir "$STATE/kubelet"
    start kube-proxy "$BIN/kube-proxy" --kubeconfig "$STATE/proxy.kubeconfig" --proxy-mode iptables \
        --hostname-override "$NODE" --cluster-cidr "$POD_CIDR" --bind-address 127.0.0.1 \
        --healthz-bind-address 127.0.0.1:10256 --metrics-bind-address 127.0.0.1:10249 \
        --nodeport-addresses 127.0.0.1/32 --conntrack-max-per-core 0
    wait_for 90 "node $NODE" "$BIN/kubectl" wait --for=condition=Ready "node/$NODE" --timeout=2s

    log "CoreDNS"
    coredns_manifest | "$BIN/kubectl" apply -f - >/dev/null
    wait_for 120 CoreDNS "$BIN/kubectl" -n kube-system rollout status deployment/coredns --timeout=2s
    log "up: export KUBECONFIG=$KUBECONFIG"
}

load_images() {  # docker images into the cluster's containerd
    [ $# -gt 0 ] || return 0
    log "importing $*"
    docker save "$@" | ctr --address "$RUN/containerd.sock" -n k8s.io images import - >/dev/null
}

down() {
    [ "$(id -u)" = 0 ] || die "run as root"
    [ -d "$STATE" ] || { log "nothing to take down"; return 0; }
    local bin
    bin=$(cat "$STATE/bin" 2>/dev/null || true)
    # Pods first, through the runtime, so CNI releases their addresses and rules.
    if [ -S "$RUN/containerd.sock" ] && [ -x "$bin/crictl" ]; then
        for name in kubelet kube-proxy kube-scheduler kube-controller-manager; do stop "$name"; done
        local crictl=("$bin/crictl" --config /dev/null --runtime-endpoint "unix://$RUN/containerd.sock" --timeout 20s)
        "${crictl[@]}" stopp $("${crictl[@]}" pods -q) >/dev/null 2>&1 || true
        "${crictl[@]}" rmp -f $("${crictl[@]}" pods -q) >/dev/null 2>&1 || true
    fi
    for name in kubelet kube-proxy kube-scheduler kube-controller-manager kube-apiserver etcd containerd; do
        stop "$name"
    done
    # Anything left in containerd's own cgroups and mounts (shims, containers).
    pkill -f "containerd-shim-runc-v2 -namespace k8s.io -address $RUN/containerd.sock" 2>/dev/null || true
    { grep -o " $STATE[^ ]*\| $RUN[^ ]*" /proc/mounts || true; } | sort -r | while read -r mount; do
        umount -l "$mount" 2>/dev/null || true
    done
    # iptables (IPv4 and IPv6): kube-proxy's and CNI's chains, and the rules that jump to them.
    for tables in iptables ip6tables; do
        command -v "$tables" >/dev/null || continue
        for table in filter nat mangle; do
            { "$tables-save" -t "$table" 2>/dev/null | grep -E '^-A [A-Z-]+ .*-j (KUBE-|CNI-)' || true; } \
                | sed 's/^-A /-D /' | while read -r rule; do
                    eval "$tables -t $table $rule" 2>/dev/null || true
                done
            chains=$({ "$tables-save" -t "$table" 2>/dev/null || true; } | sed -n 's/^:\(\(KUBE\|CNI\)-[^ ]*\).*/\1/p')
            for chain in $chains; do "$tables" -t "$table" -F "$chain" 2>/dev/null || true; done
            for chain in $chains; do "$tables" -t "$table" -X "$chain" 2>/dev/null || true; done
        done
    done
    ip route del "$SERVICE_CIDR" dev "$NODE_BRIDGE" 2>/dev/null || true
    for link in "$CNI_BRIDGE" "$NODE_BRIDGE"; do ip link del "$link" 2>/dev/null || true; done
    conntrack -D -s "$POD_CIDR" >/dev/null 2>&1 || true
    # The sysctls kubelet and kube-proxy changed, as they were.
    while IFS='=' read -r name value; do
        [ -n "$value" ] && sysctl -qw "$name=$value" 2>/dev/null || true
    done < "$STATE/sysctls"
    rm -rf "$STATE" "$RUN"
    log "down"
}

stop() {  # name: TERM, then KILL after 10 s
    local pidfile=$STATE/pids/$1 pid
    [ -f "$pidfile" ] || return 0
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null || { rm -f "$pidfile"; return 0; }
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$pidfile"
}

case "${1:-}" in
    up) shift; up "$@" ;;
    down) down ;;
    load) shift; load_images "$@" ;;
    env) echo "export KUBECONFIG=$KUBECONFIG PATH=$(cat "$STATE/bin"):\$PATH" ;;
    *) echo "usage: $0 up [IMAGE...] | load IMAGE... | down | env" >&2; exit 2 ;;
esac
