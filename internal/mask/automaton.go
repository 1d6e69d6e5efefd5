package mask

import (
	"bytes"
	"slices"
)

// automaton is an Aho–Corasick automaton over a set of secrets: it reads
// a stream one byte at a time and, after each byte, knows the longest
// secret that ends there and the longest suffix of the input that a secret
// may still continue. That is all a leftmost-longest scan needs (see
// Writer.drain), in time linear in the stream whatever the number of
// secrets; comparing every secret at every byte cost O(bytes × secrets).
//
// States are the trie nodes of the secrets' prefixes (0 is the root, the
// empty prefix). Missing transitions follow failure links, as in the
// textbook construction. The scan spends nearly all its time in the first
// levels (in ordinary text every byte that starts a secret leads there),
// so those states, and any with many children, are "dense": numbered
// first, with a full transition row, failures resolved, so one step is
// one lookup. Rows are indexed by byte class, not byte: bytes that occur
// in no secret share class 0, so a row is as wide as the secrets'
// alphabet (about 70 for generated passwords), which keeps the rows of
// 1,000 secrets within a few hundred KiB, cache-sized.
type automaton struct {
	class  [256]uint16 // byte → column; 0 for bytes in no secret
	stride int         // columns per row
	dense  int32       // states [0, dense) have rows
	rows   []int32     // dense·stride transitions; matchFlag set when the target has a match
	nodes  []node
	edges  []edge // children of sparse states, sorted by byte within a state
}

// matchFlag marks a transition (in rows, and from step) whose target
// state has a match, so the scan looks at the state only then.
const matchFlag = -1 << 31

type node struct {
	fail  int32 // state of the longest proper suffix of this prefix that is one
	depth int32 // length of this prefix
	// match is the length of the longest secret that is a suffix of this
	// prefix (its own secret, or one reached through fail), 0 if none.
	match int32
	// live is the length of the longest suffix of this prefix (itself
	// included) that some secret continues: the part of the input that may
	// still become a secret. A whole secret that no secret extends is not
	// live.
	live     int32
	first, n int32 // children: edges[first : first+n]
}

type edge struct {
	b  byte
	to int32
}

// Which states are dense: the first denseDepth levels below the root, and
// any state with at least denseAt children (rare further down: deeper
// states of random secrets have one child each).
const (
	denseDepth = 2
	denseAt    = 4
)

// newAutomaton builds the automaton for secrets (each non-empty).
func newAutomaton(secrets [][]byte) *automaton {
	a := &automaton{}

	// Byte classes.
	var seen [256]bool
	for _, s := range secrets {
		for _, b := range s {
			seen[b] = true
		}
	}
	a.stride = 1
	for b := range seen {
		if seen[b] {
			a.class[b] = uint16(a.stride)
			a.stride++
		}
	}

	// The trie, built from the secrets in sorted order: each one shares
	// the path of its common prefix with the one before, and every node's
	// children are created in increasing byte order. Nodes are numbered in
	// creation order here ("old" ids).
	sorted := slices.Clone(secrets)
	slices.SortFunc(sorted, func(x, y []byte) int { return bytes.Compare(x, y) })
	sorted = slices.CompactFunc(sorted, bytes.Equal)
	parent, label, depth, end := []int32{-1}, []byte{0}, []int32{0}, []bool{false}
	path := []int32{0} // path[d]: the node at depth d of the previous secret
	var prev []byte
	for _, s := range sorted {
		l := 0
		for l < len(prev) && l < len(s) && prev[l] == s[l] {
			l++
		}
		path = path[:l+1]
		for d := l; d < len(s); d++ {
			path = append(path, int32(len(parent)))
			parent, label, depth, end = append(parent, path[d]), append(label, s[d]), append(depth, int32(d+1)), append(end, false)
		}
		end[path[len(s)]] = true
		prev = s
	}
	// Children lists, in byte order: children[childStart[p]:childStart[p+1]].
	childStart := make([]int32, len(parent)+1)
	for _, p := range parent[1:] {
		childStart[p+1]++
	}
	for i := 1; i < len(childStart); i++ {
		childStart[i] += childStart[i-1]
	}
	children := make([]int32, len(parent)-1)
	fill := slices.Clone(childStart)
	for c := 1; c < len(parent); c++ {
		p := parent[c]
		children[fill[p]] = int32(c)
		fill[p]++
	}
	kids := func(old int32) []int32 { return children[childStart[old]:childStart[old+1]] }
	isDense := func(old int32) bool { return depth[old] <= denseDepth || len(kids(old)) >= denseAt }

	// Number the states: dense ones first, each group breadth-first, so
	// a state's failure target (always shallower) is numbered before it
	// within its group, and the busiest states sit together.
	bfs := make([]int32, 1, len(parent)) // old ids, breadth-first
	for i := 0; i < len(bfs); i++ {
		bfs = append(bfs, kids(bfs[i])...)
	}
	id := make([]int32, len(parent))
	next := int32(0)
	for _, old := range bfs {
		if isDense(old) {
			id[old] = next
			next++
		}
	}
	a.dense = next
	for _, old := range bfs {
		if !isDense(old) {
			id[old] = next
			next++
		}
	}
	a.nodes = make([]node, len(parent))
	a.edges = make([]edge, 0, len(parent)-1)
	for old := range parent {
		n := &a.nodes[id[old]]
		n.depth = depth[old]
		if end[old] {
			n.match = depth[old]
		}
		n.first = int32(len(a.edges))
		for _, c := range kids(int32(old)) {
			a.edges = append(a.edges, edge{label[c], id[c]})
		}
		n.n = int32(len(a.edges)) - n.first
	}

	// Failure links, matches and live lengths, breadth-first: a state's
	// failure link is where its parent's failure chain can take the same
	// byte, and that chain is shallower, so already final.
	for _, old := range bfs {
		n := &a.nodes[id[old]]
		for _, e := range a.edges[n.first : n.first+n.n] {
			child := &a.nodes[e.to]
			if id[old] != 0 {
				child.fail = a.stepEdges(n.fail, e.b)
			}
			if child.match == 0 {
				child.match = a.nodes[child.fail].match
			}
			if child.live = child.depth; child.n == 0 {
				child.live = a.nodes[child.fail].live
			}
		}
	}

	// Rows, breadth-first as well: a row copies its failure target's row
	// (already final) and overrides its own children.
	a.rows = make([]int32, int(a.dense)*a.stride)
	for _, old := range bfs {
		s := id[old]
		if s >= a.dense {
			continue
		}
		row := a.rows[int(s)*a.stride : int(s+1)*a.stride]
		n := &a.nodes[s]
		if s != 0 {
			copy(row, a.row(n.fail))
		}
		for _, e := range a.edges[n.first : n.first+n.n] {
			row[a.class[e.b]] = a.flagged(e.to)
		}
	}
	return a
}

// row returns the transitions of a dense state, or, for a sparse one,
// builds them (only while building rows: the failure target of a dense
// state can be sparse).
func (a *automaton) row(s int32) []int32 {
	if s < a.dense {
		return a.rows[int(s)*a.stride : int(s+1)*a.stride]
	}
	row := make([]int32, a.stride)
	for b := range 256 {
		if c := a.class[b]; c != 0 {
			row[c] = a.step(s, byte(b))
		}
	}
	return row
}

// flagged returns state s with matchFlag set if it has a match.
func (a *automaton) flagged(s int32) int32 {
	if a.nodes[s].match > 0 {
		return s | matchFlag
	}
	return s
}

// stepEdges follows children and failure links only, while the failure
// links and rows are being built.
func (a *automaton) stepEdges(s int32, b byte) int32 {
	for {
		n := &a.nodes[s]
		for _, e := range a.edges[n.first : n.first+n.n] {
			if e.b == b {
				return e.to
			}
		}
		if s == 0 {
			return 0
		}
		s = n.fail
	}
}

// step returns the state after reading b in state s, with matchFlag set
// if it has a match.
func (a *automaton) step(s int32, b byte) int32 {
	for s >= a.dense {
		n := &a.nodes[s]
		for _, e := range a.edges[n.first : n.first+n.n] {
			if e.b == b {
				return a.flagged(e.to)
			}
			if e.b > b {
				break
			}
		}
		s = n.fail
	}
	return a.rows[int(s)*a.stride+int(a.class[b])]
}
