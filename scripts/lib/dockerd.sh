# shellcheck shell=bash
# dockerd.sh: a private Docker engine for tests. Source it, then:
#
#   dockerd_install              apt-get install what is missing: docker.io,
#                                docker-compose, and the static busybox and
#                                bash the stand-in base images are made of
#   dockerd_start DIR            start dockerd with every piece of state under
#                                DIR (created if missing); on return DOCKER_HOST
#                                points at it and $DOCKER is the client to use
#   dockerd_stop DIR             stop exactly that dockerd (by its PID), its
#                                containerd, unmount what it left and remove DIR
#
# scripts/docker-engine wraps these for use from other languages and shells.
#
# Several engines can run side by side (and beside a system one): each has its
# own data root, exec root, pidfile, socket, containerd and config file, never
# /var/run/docker.sock or /etc/docker/daemon.json. The engine does not touch the
# host's network setup: no iptables rules, no IP forwarding, no masquerading,
# and by default no bridge at all (--bridge none), so containers use
# `--network host` (loopback reaches test servers) or `--network none`, and
# build steps have no network. Networks an engine creates later (Compose) come
# from a TEST-NET pool; Docker skips subnets other engines' networks use, and
# dockerd_stop removes their bridges. Settings:
#
#   DOCKERD_BRIDGE=1                       give the engine a default bridge of
#                                          its own, injdN with 198.51.100.16N+1/28
#                                          (N = 0..3, the first free one): the
#                                          host's address there is the gateway
#                                          of `docker network inspect bridge`,
#                                          which containers on any of the
#                                          engine's networks reach (no docker0:
#                                          several engines can have one)
#   DOCKERD_ADDRESS_POOL=198.51.100.64/26  pool for user-defined networks,
#   DOCKERD_ADDRESS_POOL_SIZE=28           split into /28s
#   DOCKERD_START_TIMEOUT=120              seconds to wait for the API
#   DOCKERD_TMPFS=1, DOCKERD_TMPFS_SIZE=8g  keep the data root on a tmpfs of
#                                          at most this size (0: on disk)
#
# The client is Debian's (/usr/bin/docker), the same version as the engine,
# with its own DOCKER_CONFIG under DIR so no user configuration is read.

dockerd_log() { printf '%s\n' "dockerd: $*" >&2; }

# dockerd_now prints a timestamp in milliseconds.
dockerd_now() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }

# dockerd_install installs the Debian packages the Docker checks need, in one
# apt-get call and only when something is missing (about a minute cold).
dockerd_install() {
	local pkg missing=()
	for pkg in docker.io docker-compose busybox-static bash-static; do
		if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
			missing+=("$pkg")
		fi
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	local t0
	t0=$(dockerd_now)
	dockerd_log "installing ${missing[*]} with apt-get"
	export DEBIAN_FRONTEND=noninteractive
	if ! apt-get install -y --no-install-recommends "${missing[@]}" >&2; then
		apt-get update >&2
		apt-get install -y --no-install-recommends "${missing[@]}" >&2
	fi
	dockerd_log "installed in $(($(dockerd_now) - t0)) ms"
}

# dockerd_client prints the docker client to use: Debian's, which matches the
# engine, rather than a newer one earlier on PATH.
dockerd_client() {
	if [ -x /usr/bin/docker ]; then echo /usr/bin/docker; else command -v docker; fi
}

dockerd_start() {
	local dir=${1:?dockerd_start DIR}
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	local sock=$dir/run/docker.sock
	# sun_path holds 108 bytes; containerd's socket sits deeper than ours.
	if [ ${#sock} -gt 90 ]; then
		dockerd_log "state directory path too long for a unix socket: $dir"
		return 1
	fi
	if [ -s "$dir/dockerd.pid" ] && kill -0 "$(cat "$dir/dockerd.pid")" 2>/dev/null; then
		dockerd_log "an engine already runs in $dir (pid $(cat "$dir/dockerd.pid"))"
		return 1
	fi
	mkdir -p "$dir/data" "$dir/run" "$dir/client"
	# Images and containers live in memory: faster builds on a busy disk, and
	# teardown is an unmount instead of deleting tens of thousands of files.
	if [ "${DOCKERD_TMPFS:-1}" = 1 ]; then
		mount -t tmpfs -o "size=${DOCKERD_TMPFS_SIZE:-8g},mode=0710" injector-dockerd "$dir/data"
	fi
	# Our own (empty) config file, so /etc/docker/daemon.json is never read.
	echo '{}' >"$dir/daemon.json"

	local args=(
		--config-file "$dir/daemon.json"
		--data-root "$dir/data"
		--exec-root "$dir/run"
		--pidfile "$dir/dockerd.pid"
		--host "unix://$sock"
		--iptables=false --ip-forward=false --ip-masq=false
		--default-address-pool "base=${DOCKERD_ADDRESS_POOL:-198.51.100.64/26},size=${DOCKERD_ADDRESS_POOL_SIZE:-28}"
		--log-level warn
	)
	if [ "${DOCKERD_BRIDGE:-}" = 1 ]; then
		local bridge
		bridge=$(dockerd_bridge_create "$dir") || return 1
		args+=(--bridge "$bridge")
	else
		args+=(--bridge none)
	fi

	local t0 pid deadline
	t0=$(dockerd_now)
	# setsid: the engine gets its own process group, so a Ctrl-C meant for
	# the caller's tests reaches it only through dockerd_stop.
	setsid dockerd "${args[@]}" >"$dir/dockerd.log" 2>&1 </dev/null &
	pid=$!
	echo "$pid" >"$dir/dockerd.started"

	export DOCKER_HOST=unix://$sock DOCKER_CONFIG=$dir/client
	DOCKER=$(dockerd_client)
	export DOCKER
	deadline=$((SECONDS + ${DOCKERD_START_TIMEOUT:-120}))
	until "$DOCKER" version >/dev/null 2>&1; do
		if ! kill -0 "$pid" 2>/dev/null; then
			dockerd_log "dockerd exited during start; its log:"
			tail -n 30 "$dir/dockerd.log" >&2
			dockerd_stop "$dir"
			return 1
		fi
		if [ $SECONDS -ge $deadline ]; then
			dockerd_log "not ready after ${DOCKERD_START_TIMEOUT:-120}s; its log:"
			tail -n 30 "$dir/dockerd.log" >&2
			dockerd_stop "$dir"
			return 1
		fi
		sleep 0.1
	done
	DOCKERD_PID=$pid
	dockerd_log "ready in $(($(dockerd_now) - t0)) ms (pid $pid, DOCKER_HOST=$DOCKER_HOST)"
}

# dockerd_bridge_create DIR creates the bridge of the engine in DIR: the
# first free of injd0..injd3, with 198.51.100.(16N+1)/28 (the address plan
# keeps 198.51.100.0/26 for engines' bridges). Creating the link is the
# claim, so two engines starting at once cannot take the same one. A bridge
# whose engine is gone (its DIR has no running dockerd) is taken over.
# Prints the bridge's name; its alias records DIR.
dockerd_bridge_create() {
	local dir=$1 n name owner
	for n in 0 1 2 3; do
		name=injd$n
		if ! ip link add "$name" type bridge 2>/dev/null; then
			owner=$(cat "/sys/class/net/$name/ifalias" 2>/dev/null) || continue
			if [ -n "$owner" ] && [ -s "$owner/dockerd.started" ] && kill -0 "$(cat "$owner/dockerd.started")" 2>/dev/null; then
				continue # in use
			fi
			dockerd_log "taking over $name, left by an engine that is gone (${owner:-unknown})"
			ip link del "$name" 2>/dev/null || true
			ip link add "$name" type bridge 2>/dev/null || continue
		fi
		ip link set "$name" alias "$dir"
		ip addr add "198.51.100.$((16 * n + 1))/28" dev "$name"
		ip link set "$name" up
		echo "$name" >"$dir/bridge"
		echo "$name"
		return 0
	done
	dockerd_log "no free bridge: injd0..injd3 are all in use by running engines"
	return 1
}

# dockerd_bridges prints the host bridges of the engine's networks (its
# default bridge excepted), for dockerd_stop to remove: Docker leaves them
# behind when it stops.
dockerd_bridges() {
	local id name
	for id in $("$DOCKER" network ls -q --filter driver=bridge 2>/dev/null); do
		name=$("$DOCKER" network inspect -f '{{index .Options "com.docker.network.bridge.name"}}' "$id" 2>/dev/null) || continue
		[ -n "$name" ] || name=br-${id:0:12}
		[ "$name" = "$(cat "$1/bridge" 2>/dev/null)" ] || echo "$name"
	done
}

# dockerd_kill_wait PID NAME DIR sends SIGTERM to PID, if it is still the NAME
# process started for DIR, and waits for it to exit (SIGKILL after 60s).
dockerd_kill_wait() {
	local pid=$1 name=$2 dir=$3 i
	[ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 0
	local cmdline
	cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 0
	case $cmdline in
	*"$name"*"$dir"*) ;;
	*) return 0 ;; # the PID was reused by something else: not ours to stop
	esac
	kill -TERM "$pid" 2>/dev/null || return 0
	for i in $(seq 600); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	dockerd_log "$name $pid ignored SIGTERM for 60s; killing it"
	kill -KILL "$pid" 2>/dev/null || true
	while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
}

dockerd_stop() {
	local dir=${1:?dockerd_stop DIR}
	[ -d "$dir" ] || return 0
	dir=$(cd "$dir" && pwd)
	local t0 bridges link
	t0=$(dockerd_now)
	# The bridges of the networks it made, asked while it still answers.
	bridges=$(DOCKER_HOST=unix://$dir/run/docker.sock DOCKER_CONFIG=$dir/client DOCKER=${DOCKER:-$(dockerd_client)} dockerd_bridges "$dir")
	# dockerd stops its containers and its own containerd on SIGTERM. Its
	# PID is the one we started; the pidfile is only a cross-check.
	dockerd_kill_wait "$(cat "$dir/dockerd.started" 2>/dev/null)" dockerd "$dir"
	for link in $bridges $(cat "$dir/bridge" 2>/dev/null); do
		ip link del "$link" 2>/dev/null || true
	done
	# A containerd left by a dockerd that died hard.
	dockerd_kill_wait "$(cat "$dir/run/containerd/containerd.pid" 2>/dev/null)" containerd "$dir"
	# Mounts left behind (overlay layers, netns, shm) would make rm fail.
	local m
	while read -r m; do
		umount -l "$m" 2>/dev/null || true
	done < <(awk -v d="$dir/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r)
	rm -rf "$dir"
	dockerd_log "stopped in $(($(dockerd_now) - t0)) ms"
}
