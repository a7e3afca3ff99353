package handlers

// Builtins is the chain's order: the one list to edit to add a built-in
// handler. Early handlers make the machine reachable and named; user-level
// provisioning follows; exec plug-ins run after all of them.
func Builtins() []Handler {
	return []Handler{
		Hostname,
		Network,
	}
}

// Sections are the flint.yaml sections handlers own, beside the core
// sections (imds, handlers, log).
func Sections() map[string]bool {
	m := map[string]bool{}
	for name := range sectionTypes() {
		m[name] = true
	}
	return m
}

func isBuiltin(name string) bool {
	for _, h := range Builtins() {
		if h.Name() == name {
			return true
		}
	}
	return false
}
