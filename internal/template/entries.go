package template

import "github.com/injector-dev/injector/internal/fetch"

// Entry is what the list functions (passworkEntries, passboltEntries,
// passagentEntries) yield for each entry of a selection:
//
//	<< range passworkEntries "prod/app" >><< .Name >>=<< .Password >>
//	<< end >>
//
// Fields holds every field by name (password, login, url… and the custom
// fields), Custom the custom fields alone. Their values are strings; the
// maps are map[string]any so that sprig's dict functions (get, hasKey,
// keys, pick, omit) take them.
type Entry struct {
	Name     string
	Path     string
	Password string
	Fields   map[string]any
	Custom   map[string]any
}

func entriesOf(list []fetch.Entry) []Entry {
	out := make([]Entry, 0, len(list))
	for _, e := range list {
		te := Entry{Name: e.Name, Path: e.Path, Fields: map[string]any{}, Custom: map[string]any{}}
		for _, f := range e.Fields {
			if f.Custom {
				if _, ok := te.Custom[f.Name]; !ok {
					te.Custom[f.Name] = f.Value
				}
			}
			if _, ok := te.Fields[f.Name]; !ok {
				te.Fields[f.Name] = f.Value // a provider's own fields come first and win
			}
		}
		te.Password, _ = te.Fields["password"].(string)
		out = append(out, te)
	}
	return out
}
