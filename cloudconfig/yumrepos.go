package cloudconfig

import (
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/flint-dev/flint/userdata"
)

// YumRepoDir is cloud-init's default yum_repo_dir.
const YumRepoDir = "/etc/yum.repos.d/"

// yumRepoURLKeys are the keys a repository needs one of: cloud-init 22.4
// asks for baseurl alone, later releases accept metalink or mirrorlist
// instead (Fedora's own repositories have no baseurl).
var yumRepoURLKeys = []string{"baseurl", "metalink", "mirrorlist"}

// YumReposInput is the yum_add_repo module's input.
type YumReposInput struct {
	// Config is the merged cloud-config: yum_repos and yum_repo_dir.
	Config map[string]any
	// Order is the order user-data wrote yum_repos' keys in, and each
	// repository's (ReadKeyOrder); cloud-init keeps it, decoded
	// cloud-config does not. nil: sorted.
	Order *KeyOrder
	// Exists reports whether a path of the target system exists.
	Exists func(path string) bool
	// Now dates the files' first line.
	Now time.Time
}

// YumReposPlan is what the yum_add_repo module does: write Files. Notes
// say which repositories were left alone (their file exists); Problems
// are repositories cloud-init refuses, each one line naming it: they are
// skipped and the others written.
type YumReposPlan struct {
	Files    []File
	Notes    []string
	Problems []string
}

// YumRepos decides the yum_add_repo module as cloud-init's
// cc_yum_add_repo does (frequency once per instance): nothing without a
// yum_repos value (or an empty one); otherwise yum_repos is a mapping of
// repository id to its yum.conf keys. The id's spaces become dashes, and
// the repository goes to <yum_repo_dir>/<id>.repo unless that file
// exists (or an earlier id made the same name): existing files are never
// changed. Keys are lowercased and stripped, their dashes made
// underscores; a repository needs one of baseurl, metalink or
// mirrorlist. Values are written as yum reads them: booleans as 1 or 0,
// a list as one value per line, anything else as Python's str(); the
// file is what Python's configparser writes, after a "# Created by
// cloud-init on <date>" line.
//
// Where cloud-init fails the whole module before writing anything
// (yum_repos, or a repository, neither empty nor a mapping), YumRepos
// returns an error and no plan. Where it fails part-way or writes what
// yum cannot use, the repository is a Problem instead: a value with a
// lone % (configparser's interpolation refuses it), a mapping as a value,
// the id DEFAULT or "", an id with a "/" (its file would land outside
// yum_repo_dir). yum_repo_dir must be a non-empty string (cloud-init
// str()s anything, so null would be a directory "None").
func YumRepos(in YumReposInput) (*YumReposPlan, error) {
	repos, present := in.Config["yum_repos"]
	if !present || !userdata.Truthy(repos) {
		return nil, nil
	}
	m, ok := repos.(map[string]any)
	if !ok {
		return nil, configErrorf("yum_repos", "is %s, not a mapping of repository ids; no repository written", typeName(repos))
	}
	dir := YumRepoDir
	if v, ok := in.Config["yum_repo_dir"]; ok {
		s, isStr := v.(string)
		if !isStr || s == "" {
			return nil, configErrorf("yum_repo_dir", "is %s, not a directory; no repository written", typeName(v))
		}
		dir = s
	}
	p := &YumReposPlan{}
	pending := map[string]bool{}
	type repo struct {
		id   string
		keys []string
		cfg  map[string]any
	}
	var todo []repo
	for _, id := range in.Order.Sort(m) {
		canon := strings.ReplaceAll(id, " ", "-")
		file := path.Join("/", dir, canon+".repo")
		if in.Exists != nil && in.Exists(file) {
			p.Notes = append(p.Notes, "skipping repo "+id+": "+file+" already exists")
			continue
		}
		if pending[canon] {
			p.Notes = append(p.Notes, "skipping repo "+id+": "+file+" already pending")
			continue
		}
		var cfg map[string]any
		switch v := m[id].(type) {
		case map[string]any:
			cfg = v
		default:
			if userdata.Truthy(v) {
				return nil, configErrorf("yum_repos."+id, "is %s, not a mapping of yum.conf keys; no repository written", typeName(v))
			}
		}
		// Keys as cloud-init cleans them: the first spelling's place,
		// the last spelling's value.
		clean := map[string]any{}
		var keys []string
		for _, k := range in.Order.Child(id).Sort(cfg) {
			ck := strings.ReplaceAll(strings.TrimFunc(strings.ToLower(k), isPyUnicodeSpace), "-", "_")
			if ck == "" {
				continue
			}
			if _, seen := clean[ck]; !seen {
				keys = append(keys, ck)
			}
			clean[ck] = cfg[k]
		}
		if why := yumRepoProblem(canon, keys, clean); why != "" {
			p.Problems = append(p.Problems, "repository "+strconv.Quote(id)+" "+why+"; skipped")
			continue
		}
		pending[canon] = true
		todo = append(todo, repo{canon, keys, clean})
	}
	header := "# Created by cloud-init on " + in.Now.UTC().Format("Mon, 02 Jan 2006 15:04:05 -0700") + "\n"
	for _, r := range todo {
		var b strings.Builder
		b.WriteString(header + "[" + r.id + "]\n")
		for _, k := range r.keys {
			v, _ := yumRepoValue(r.cfg[k])
			b.WriteString(k + " = " + strings.ReplaceAll(v, "\n", "\n\t") + "\n")
		}
		b.WriteString("\n")
		p.Files = append(p.Files, File{Path: path.Join("/", dir, r.id+".repo"), Mode: 0o644, Content: []byte(b.String())})
	}
	return p, nil
}

// configparserRef is what configparser's BasicInterpolation accepts
// after a %: a %(name)s reference (%% is taken out first).
var configparserRef = regexp.MustCompile(`%\(([^)]+)\)s`)

// yumRepoProblem says why a repository (its canonical id, cleaned keys
// and values) is not written, or "".
func yumRepoProblem(id string, keys []string, cfg map[string]any) string {
	switch {
	case id == "" || id == "DEFAULT":
		return "is not a name configparser writes a section for"
	case strings.ContainsAny(id, "/\x00"):
		return "has a / in its id, which is its file name"
	}
	hasURL := false
	for _, k := range yumRepoURLKeys {
		_, ok := cfg[k]
		hasURL = hasURL || ok
	}
	if !hasURL {
		return "has none of baseurl, metalink or mirrorlist"
	}
	for _, k := range keys {
		v, ok := yumRepoValue(cfg[k])
		if !ok {
			return "has a mapping as the value of " + k
		}
		if strings.Contains(configparserRef.ReplaceAllString(strings.ReplaceAll(v, "%%", ""), ""), "%") {
			return "has a % in " + k + " that is neither %% nor %(name)s (cloud-init's configparser refuses it)"
		}
	}
	return ""
}

// yumRepoValue is cloud-init's _format_repo_value: booleans as 1 or 0,
// lists one item per line, everything else str()-ed. ok is false for a
// mapping (Python would write its repr).
func yumRepoValue(v any) (s string, ok bool) {
	switch v := v.(type) {
	case bool:
		if v {
			return "1", true
		}
		return "0", true
	case []any:
		items := make([]string, len(v))
		for i, x := range v {
			if items[i], ok = yumRepoValue(x); !ok {
				return "", false
			}
		}
		return strings.Join(items, "\n"), true
	case map[string]any:
		return "", false
	}
	return userdata.PyStr(v), true
}

// isPyUnicodeSpace is Python's str.isspace for one character.
func isPyUnicodeSpace(r rune) bool {
	return unicode.IsSpace(r) || r >= 0x1c && r <= 0x1f
}
