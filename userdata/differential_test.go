package userdata

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/flint-dev/flint/internal/testenv"
)

// referencePython is Debian's interpreter, which sees the cloud-init
// package; a python3 earlier on PATH may not.
const referencePython = "/usr/bin/python3"

// deliberateDifferences lists corpus documents where flint departs from
// cloud-init on purpose, what is not compared there, and why. Differences
// the corpus cannot show (cloud-init would need the network or local
// files) are listed in the package documentation of the test below.
var deliberateDifferences = map[string]struct {
	skipParts, skipConfig bool
	reason                string
}{
	"start-lines": {skipConfig: true, reason: "#cloud-config-jsonp (JSON patch) parts are applied by cloud-init; flint skips them with a warning"},
	"non-ascii": {skipParts: true, skipConfig: true, reason: "cloud-init re-encodes non-ASCII 8bit MIME bodies with raw-unicode-escape " +
		"(mojibake; the cloud-config then fails to load); flint keeps the bytes as sent"},
}

// Other deliberate differences, not in the corpus:
//   - #include of file:// URLs or local paths: cloud-init reads local files;
//     flint fetches only http(s).
//   - MIME documents that are not UTF-8: cloud-init fails the whole
//     user-data; flint parses the bytes.
//   - Parts with a non-UTF-8 charset (e.g. iso-8859-1): cloud-init transcodes
//     them to UTF-8; flint keeps the bytes as sent.
//   - message/rfc822 parts: cloud-init walks into them; flint treats them as
//     an opaque part.
//   - jinja: see jinjaDeliberate in jinja_differential_test.go.
//   - YAML timestamps stay strings (cloud-init makes datetime objects);
//     .inf/.nan stay strings, since JSON cannot hold them.
//   - Merging a mapping into a list with list(append|prepend) adds its
//     keys in sorted order (cloud-init: document order).
//   - A "From " line ending the headers is dropped (Python returns it to
//     the body).
//   - Includes nest at most 8 deep and fetch at most 32 URLs (cloud-init
//     loops forever on an include cycle).

// corpusVariants says which extra forms of a corpus document are
// generated: CRLF line endings and/or whole-document gzip.
var corpusVariants = map[string][]string{
	"cloud-config-basic":  {"crlf", "gzip", "crlf+gzip"},
	"script":              {"crlf", "gzip"},
	"multipart-basic":     {"crlf", "gzip"},
	"multipart-nested":    {"crlf"},
	"merge-type-header":   {"crlf"},
	"multipart-base64":    {"crlf"},
	"multipart-gzip-part": {"gzip"},
	"archive":             {"crlf"},
	"odd-headers":         {"crlf"},
	"empty":               {"gzip"},
	"no-close-boundary":   {"crlf"},
}

type refDoc struct {
	Name         string         `json:"name"`
	File         string         `json:"file"`
	LaunchIndex  *int           `json:"launch_index,omitempty"`
	InstanceData map[string]any `json:"instance_data,omitempty"`
	raw          []byte
}

type refResult struct {
	Parts       []refPart      `json:"parts"`
	CloudConfig map[string]any `json:"cloud_config"`
	Error       string         `json:"error"`
}

type refPart struct {
	ContentType string `json:"content_type"`
	Filename    string `json:"filename"`
	SHA256      string `json:"sha256"`
}

var testInstanceData = map[string]any{
	"v1": map[string]any{
		"local_hostname":    "ip-10-0-0-5",
		"instance_id":       "i-0123456789abcdef0",
		"availability_zone": "eu-central-1a",
		"region":            "eu-central-1",
	},
	"ds": map[string]any{
		"meta_data": map[string]any{"hostname": "ip-10-0-0-5.eu-central-1.compute.internal"},
	},
}

func gz(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// includeServer serves the documents #include lines in the corpus name.
func includeServer(t testing.TB) *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("/cc.yaml", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "#cloud-config\nruncmd: [included]\ntimezone: Included/Zone\n")
	})
	mux.HandleFunc("/script.sh", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "#!/bin/sh\necho included script\n")
	})
	mux.HandleFunc("/mime.txt", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=q\n\n--q\nContent-Type: text/x-shellscript\n\n#!/bin/sh\necho included mime\n--q--\n")
	})
	srv := httptest.NewServer(mux) // listens on 127.0.0.1
	t.Cleanup(srv.Close)
	return srv
}

func loadCorpus(t testing.TB, serverURL string) []refDoc {
	files, err := filepath.Glob("testdata/corpus/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus in testdata/corpus: %v", err)
	}
	sort.Strings(files)
	var docs []refDoc
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		raw = bytes.ReplaceAll(raw, []byte("@SERVER@"), []byte(serverURL))
		name := strings.TrimSuffix(filepath.Base(f), ".txt")
		docs = append(docs, refDoc{Name: name, raw: raw})
		for _, v := range corpusVariants[name] {
			b := raw
			if strings.Contains(v, "crlf") {
				b = bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n"))
			}
			if strings.Contains(v, "gzip") {
				b = gz(t, b)
			}
			docs = append(docs, refDoc{Name: name + "+" + v, raw: b})
		}
	}
	one, zero := 1, 0
	for _, d := range docs {
		switch d.Name {
		case "launch-index":
			docs = append(docs, refDoc{Name: "launch-index@1", raw: d.raw, LaunchIndex: &one})
			docs = append(docs, refDoc{Name: "launch-index@0", raw: d.raw, LaunchIndex: &zero})
		case "multipart-gzip-part":
			docs = append(docs, refDoc{Name: "multipart-gzip-part@1", raw: d.raw, LaunchIndex: &one})
		}
	}
	for i := range docs {
		if strings.HasPrefix(docs[i].Name, "jinja") {
			docs[i].InstanceData = testInstanceData
		}
	}
	return docs
}

func runReference(t *testing.T, docs []refDoc) map[string]refResult {
	t.Helper()
	py := testenv.Tool(t, referencePython)
	out, err := exec.Command(py, "-c", "import cloudinit.user_data, cloudinit.mergers").CombinedOutput()
	testenv.Need(t, err == nil, fmt.Sprintf("Debian's cloud-init importable by %s (apt-get install cloud-init): %v %s", py, err, out))
	dir := t.TempDir()
	for i := range docs {
		docs[i].File = filepath.Join(dir, fmt.Sprintf("%03d.ud", i))
		if err := os.WriteFile(docs[i].File, docs[i].raw, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	manifest, _ := json.Marshal(docs)
	mf := filepath.Join(dir, "manifest.json")
	if err := os.WriteFile(mf, manifest, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, "testdata/cloudinit_ref.py", mf)
	// The includes live on 127.0.0.1: no proxy may be consulted.
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "NO_PROXY=*", "no_proxy=*", "HOME=" + dir, "LANG=C.UTF-8"}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("cloudinit_ref.py: %v\n%s", err, stderr.String())
	}
	res := map[string]refResult{}
	if err := json.Unmarshal(stdout, &res); err != nil {
		t.Fatalf("cloudinit_ref.py output: %v", err)
	}
	return res
}

// jsonNormal round-trips a value through JSON so Go and Python numbers,
// maps and lists compare alike.
func jsonNormal(t testing.TB, v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestFlintParsesTheCorpusLikeCloudInit(t *testing.T) {
	srv := includeServer(t)
	docs := loadCorpus(t, srv.URL)
	if len(docs) < 30 {
		t.Fatalf("corpus has %d documents, want at least 30", len(docs))
	}
	compareWithReference(t, docs, true)
}

// TestMain also compares every file in $USERDATA_DIFF_DIR (e.g. a fuzzing
// corpus turned into files) with cloud-init, when that variable is set:
// a tool for developers, so it is no test that CI would see skipped.
func TestMain(m *testing.M) {
	if dir := os.Getenv("USERDATA_DIFF_DIR"); dir != "" {
		testing.Init()
		flag.Set("test.run", "^TestExtraDocuments$")
	}
	os.Exit(m.Run())
}

// TestExtraDocuments compares the documents of a directory: by default
// the examples cloud-init ships (/usr/share/doc/cloud-init/examples, real
// user-data written by cloud-init's authors, some gzip'd by Debian),
// or USERDATA_DIFF_DIR's files.
func TestExtraDocuments(t *testing.T) {
	dir := os.Getenv("USERDATA_DIFF_DIR")
	if dir == "" {
		dir = "/usr/share/doc/cloud-init/examples"
		_, err := os.Stat(dir)
		testenv.Need(t, err == nil, "cloud-init's examples ("+dir+") are installed")
	}
	files, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil {
		t.Fatal(err)
	}
	var docs []refDoc
	for _, f := range files {
		if fi, err := os.Stat(f); err != nil || !fi.Mode().IsRegular() {
			continue
		}
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(f)
		if strings.HasSuffix(name, ".gz") {
			zr, err := gzip.NewReader(bytes.NewReader(raw))
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if raw, err = io.ReadAll(zr); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			name = strings.TrimSuffix(name, ".gz")
		}
		docs = append(docs, refDoc{Name: name, raw: raw})
	}
	if len(docs) == 0 {
		t.Fatalf("no documents in %s", dir)
	}
	compareWithReference(t, docs, false)
}

// loopbackFetcher refuses every URL not on 127.0.0.1, so that no test
// document can make the test reach the network.
var loopbackFetcher = FetcherFunc(func(ctx context.Context, u string) ([]byte, error) {
	pu, err := url.Parse(u)
	if err != nil || pu.Hostname() != "127.0.0.1" {
		return nil, fmt.Errorf("include of non-loopback URL refused by the test harness")
	}
	return (&HTTPFetcher{Attempts: 1}).Fetch(ctx, u)
})

// compareWithReference runs docs through cloud-init and flint. When strict,
// a document cloud-init rejects must be rejected by flint too; otherwise
// that is only logged (cloud-init rejects any non-UTF-8 MIME document,
// flint parses it).
func compareWithReference(t *testing.T, docs []refDoc, strict bool) {
	ref := runReference(t, docs)
	for _, d := range docs {
		t.Run(d.Name, func(t *testing.T) {
			want, ok := ref[d.Name]
			if !ok {
				t.Fatalf("no reference result")
			}
			opts := Options{
				LaunchIndex:    d.LaunchIndex,
				InstanceData:   d.InstanceData,
				IncludeOnceDir: t.TempDir(),
				Fetcher:        loopbackFetcher,
			}
			got, err := Inspect(context.Background(), d.raw, opts)
			if want.Error != "" {
				if err == nil {
					msg := fmt.Sprintf("cloud-init failed (%s) but flint did not", want.Error)
					if strict {
						t.Fatal(msg)
					}
					t.Log(msg)
				}
				return
			}
			if err != nil {
				t.Fatalf("Inspect: %v", err)
			}
			dd := deliberateDifferences[strings.SplitN(strings.SplitN(d.Name, "+", 2)[0], "@", 2)[0]]
			if dd.skipParts || dd.skipConfig {
				t.Logf("not compared (deliberate): %s", dd.reason)
			}
			if !dd.skipParts {
				var gotParts []refPart
				for _, p := range got.Parts {
					gotParts = append(gotParts, refPart{p.ContentType, p.Filename, p.SHA256})
				}
				if len(gotParts)+len(want.Parts) > 0 && !reflect.DeepEqual(gotParts, want.Parts) {
					t.Errorf("parts differ\nflint:      %+v\ncloud-init: %+v", gotParts, want.Parts)
				}
			}
			if !dd.skipConfig {
				g, w := jsonNormal(t, got.CloudConfig), jsonNormal(t, want.CloudConfig)
				if !reflect.DeepEqual(g, w) {
					gb, _ := json.Marshal(g)
					wb, _ := json.Marshal(w)
					t.Errorf("cloud_config differs\nflint:      %s\ncloud-init: %s", gb, wb)
				}
			}
		})
	}
}
