package builtin

import (
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// docRow is what the documentation says about one built-in handler.
type docRow struct{ name, frequency, section string }

// catalogRows is what the catalog says, in the documentation's words.
func catalogRows() []docRow {
	var out []docRow
	for _, d := range Catalog() {
		r := docRow{name: d.Name, frequency: string(d.Frequency), section: "—"}
		for _, n := range d.Needs {
			r.frequency += ", needs `" + n + "`"
		}
		if d.Section != "" {
			r.section = "`" + d.Section + "`"
		}
		out = append(out, r)
	}
	return out
}

func TestTheDesignTableListsTheCatalog(t *testing.T) {
	b, err := os.ReadFile("../../docs/design.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("^\\| (\\d+) \\| `([a-z0-9-]+)` \\| ([^|]+) \\| ([^|]+) \\|")
	var got []docRow
	for _, l := range strings.Split(string(b), "\n") {
		m := row.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		if want := strconv.Itoa(len(got) + 1); m[1] != want {
			t.Errorf("design.md: row %q has order %s, want %s", m[2], m[1], want)
		}
		// "per-boot (once per boot)": the words after the frequency explain it.
		freq, _, _ := strings.Cut(strings.TrimSpace(m[3]), " (")
		got = append(got, docRow{m[2], freq, strings.TrimSpace(m[4])})
	}
	if want := catalogRows(); !slices.Equal(got, want) {
		t.Errorf("docs/design.md's handler table (name, frequency, flint.yaml section):\n got %v\nwant %v (builtin.Catalog)", got, want)
	}
}

func TestTheREADMEListsTheCatalogInOrder(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Join(strings.Fields(string(b)), " ")
	_, list, ok := strings.Cut(text, "Handlers, in order: ")
	if !ok {
		t.Fatal(`README.md has no "Handlers, in order: " list`)
	}
	list, _, ok = strings.Cut(list, ", then exec plug-ins")
	if !ok {
		t.Fatal(`README.md's handler list does not end with ", then exec plug-ins"`)
	}
	if got, want := strings.Split(list, ", "), Catalog().Names(); !slices.Equal(got, want) {
		t.Errorf("README.md lists\n %v\nwant %v (builtin.Catalog)", got, want)
	}
}
