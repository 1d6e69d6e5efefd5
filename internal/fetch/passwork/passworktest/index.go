package passworktest

// index maps ids to records so that every lookup a request makes costs
// O(1): a batch of n item reads over a store of m items is then O(n), not
// O(n·m), and benchmarks of the client measure the client rather than the
// emulator. The slices on Server stay the source of order (listings and
// searches answer in insertion order); every mutation goes through the
// add/remove helpers below, which keep both in step. Callers hold s.mu.
type index struct {
	vaults    map[string]*vault
	folders   map[string]*folder
	items     map[string]*item
	shortcuts map[string]*shortcut
	// folderNames finds a folder by its place and name while seeding.
	folderNames map[folderKey]*folder
}

type folderKey struct{ vaultID, parentID, name string }

func newIndex() index {
	return index{
		vaults: map[string]*vault{}, folders: map[string]*folder{}, items: map[string]*item{},
		shortcuts: map[string]*shortcut{}, folderNames: map[folderKey]*folder{},
	}
}

func (s *Server) addVault(v *vault) {
	s.vaults = append(s.vaults, v)
	s.idx.vaults[v.ID] = v
}

func (s *Server) addFolder(f *folder) {
	s.folders = append(s.folders, f)
	s.idx.folders[f.ID] = f
	k := folderKey{f.VaultID, f.ParentID, f.Name}
	if _, ok := s.idx.folderNames[k]; !ok { // the first of equal names wins, as a scan would find it
		s.idx.folderNames[k] = f
	}
}

func (s *Server) addItem(it *item) {
	s.items = append(s.items, it)
	s.idx.items[it.ID] = it
}

func (s *Server) addShortcut(sc *shortcut) {
	s.shortcuts = append(s.shortcuts, sc)
	s.idx.shortcuts[sc.ID] = sc
}

// removeItems drops the items drop selects, and the shortcuts left
// pointing at nothing, in one pass over each list.
func (s *Server) removeItems(drop func(*item) bool) []*item {
	var removed []*item
	s.items, removed = removeWhere(s.items, drop)
	for _, it := range removed {
		delete(s.idx.items, it.ID)
	}
	if len(removed) > 0 {
		s.dropOrphanShortcuts()
	}
	return removed
}

// dropOrphanShortcuts removes shortcuts whose item is gone.
func (s *Server) dropOrphanShortcuts() {
	s.removeShortcuts(func(sc *shortcut) bool { return s.itemByID(sc.ItemID) == nil })
}

func (s *Server) removeShortcuts(drop func(*shortcut) bool) []*shortcut {
	var removed []*shortcut
	s.shortcuts, removed = removeWhere(s.shortcuts, drop)
	for _, sc := range removed {
		delete(s.idx.shortcuts, sc.ID)
	}
	return removed
}

// removeWhere splits list in place into what drop keeps and what it
// removes, keeping the order of both.
func removeWhere[T any](list []T, drop func(T) bool) (kept, removed []T) {
	kept = list[:0]
	for _, x := range list {
		if drop(x) {
			removed = append(removed, x)
			continue
		}
		kept = append(kept, x)
	}
	clear(list[len(kept):]) // no stale pointers past the end
	return kept, removed
}

func (s *Server) folderByID(id string) *folder     { return s.idx.folders[id] }
func (s *Server) vaultByID(id string) *vault       { return s.idx.vaults[id] }
func (s *Server) itemByID(id string) *item         { return s.idx.items[id] }
func (s *Server) shortcutByID(id string) *shortcut { return s.idx.shortcuts[id] }
