# shellcheck shell=bash
# k8s-node-clean.sh: after `scripts/k8s-node down STATE`, check that nothing
# of that node is left. Source it, then:
#
#   k8s_node_assert_clean STATE    prints what is left and returns 1, or 0
#
# Left behind would be: a mount below STATE, a process whose command line
# names STATE, the node's interface or pod bridge, a veth on that bridge,
# the pods' cgroup tree. K8S_NODE_LINK names the interface as for k8s-node.
k8s_node_assert_clean() {
	local state=$1 link=${K8S_NODE_LINK:-k8snode0} leftovers f args problems=()
	leftovers=$(grep -F -- "$state" /proc/self/mountinfo || true)
	[[ -z $leftovers ]] || problems+=("mounts:"$'\n'"$leftovers")
	for f in /proc/[0-9]*/cmdline; do
		mapfile -d '' -t args 2>/dev/null <"$f" || continue
		[[ "${args[*]}" != *"$state/"* ]] || problems+=("process ${f//[!0-9]/}: ${args[*]}")
	done
	for f in "$link" "${link}br"; do
		! ip link show "$f" >/dev/null 2>&1 || problems+=("interface $f")
	done
	[[ -z $(ip -o link show type veth 2>/dev/null | grep -F "master ${link}br" || true) ]] || problems+=("veths on ${link}br")
	leftovers=$(find /sys/fs/cgroup -maxdepth 2 -name "k8s-node-$(echo -n "$state" | sha256sum | cut -c1-12)" 2>/dev/null || true)
	[[ -z $leftovers ]] || problems+=("cgroups: $leftovers")
	((${#problems[@]} == 0)) && return 0
	printf 'left after down: %s\n' "${problems[@]}" >&2
	return 1
}
