package userdata

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

func mustParse(t *testing.T, raw string, opts Options) *UserData {
	t.Helper()
	ud, err := Parse(context.Background(), []byte(raw), opts)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return ud
}

func TestTypedCloudConfigDecodesTheKeysHandlersUse(t *testing.T) {
	raw, err := os.ReadFile("testdata/corpus/cloud-config-basic.txt")
	if err != nil {
		t.Fatal(err)
	}
	ud := mustParse(t, string(raw), Options{})
	cc := ud.CloudConfig
	if cc.Hostname != "web-1" || cc.FQDN != "web-1.example.internal" || cc.PreferFQDNOverHostname == nil || !*cc.PreferFQDNOverHostname {
		t.Errorf("hostname/fqdn: %+v", cc)
	}
	if cc.ManageEtcHosts != "localhost" {
		t.Errorf("manage_etc_hosts = %q", cc.ManageEtcHosts)
	}
	if len(cc.Users) != 2 || !cc.Users[0].Default || cc.Users[1].Name != "alice" ||
		!reflect.DeepEqual(cc.Users[1].Groups, []string{"adm", "sudo"}) ||
		!reflect.DeepEqual(cc.Users[1].Sudo, []string{"ALL=(ALL) NOPASSWD:ALL"}) ||
		cc.Users[1].LockPasswd == nil || *cc.Users[1].LockPasswd || len(cc.Users[1].SSHAuthorizedKeys) != 1 {
		t.Errorf("users: %+v", cc.Users)
	}
	if cc.SSHPwauth == nil || *cc.SSHPwauth {
		t.Errorf("ssh_pwauth: YAML 1.1 'no' must be false, got %v", cc.SSHPwauth)
	}
	if cc.DisableRoot == nil || !*cc.DisableRoot {
		t.Errorf("disable_root: %v", cc.DisableRoot)
	}
	if cc.Chpasswd == nil || cc.Chpasswd.Expire == nil || *cc.Chpasswd.Expire || len(cc.Chpasswd.List) != 2 ||
		cc.Chpasswd.List[0].Type != "hash" || cc.Chpasswd.List[1].Type != "RANDOM" {
		t.Errorf("chpasswd: %+v", cc.Chpasswd)
	}
	if len(cc.WriteFiles) != 3 {
		t.Fatalf("write_files: %+v", cc.WriteFiles)
	}
	w := cc.WriteFiles
	if w[0].Permissions != 0o644 || w[1].Permissions != 0o755 || !w[1].Defer || !w[2].Append || w[2].Owner != DefaultOwner {
		t.Errorf("write_files modes/flags: %+v", w)
	}
	if got, err := w[1].Decoded(); err != nil || string(got) != "#!/bin/sh\necho hello\n" {
		t.Errorf("write_files[1].Decoded() = %q, %v", got, err)
	}
	if !reflect.DeepEqual(cc.Bootcmd, []Command{{Shell: "echo early > /run/early"}, {Argv: []string{"sh", "-c", "echo $INSTANCE_ID"}}}) {
		t.Errorf("bootcmd: %+v", cc.Bootcmd)
	}
	if !reflect.DeepEqual(cc.Runcmd, []Command{{Argv: []string{"ls", "-l", "/"}}, {Shell: "echo done"}}) {
		t.Errorf("runcmd: %+v", cc.Runcmd)
	}
	if cc.FinalMessage == nil || *cc.FinalMessage != "boot finished after $UPTIME seconds" || cc.Timezone != "Europe/Berlin" {
		t.Errorf("final_message/timezone: %v %q", cc.FinalMessage, cc.Timezone)
	}
	if !reflect.DeepEqual(cc.Packages, []Package{{Name: "curl"}, {Name: "nginx", Version: "1.22.1-9"}}) || !cc.PackageUpdate || cc.PackageUpgrade {
		t.Errorf("packages: %+v update=%v upgrade=%v", cc.Packages, cc.PackageUpdate, cc.PackageUpgrade)
	}
	if !strings.Contains(cc.SSHKeys["ed25519_private"], "BEGIN OPENSSH") || cc.SSHDeleteKeys == nil || !*cc.SSHDeleteKeys ||
		!reflect.DeepEqual(cc.SSHGenKeyTypes, []string{"ed25519", "ecdsa"}) {
		t.Errorf("ssh keys: %+v %v %v", cc.SSHKeys, cc.SSHDeleteKeys, cc.SSHGenKeyTypes)
	}
	if _, ok := cc.Unknown["some_unknown_key"]; !ok {
		t.Errorf("unknown key not kept: %v", cc.Unknown)
	}
	n := 0
	for _, w := range ud.Warnings {
		if strings.Contains(w, "some_unknown_key") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("unknown key reported %d times, want once: %q", n, ud.Warnings)
	}
}

func TestWarningsNeverQuoteSecrets(t *testing.T) {
	ud := mustParse(t, "#cloud-config\nchpasswd: {list: [\"root:hunter2\"]}\nusers: [{name: x, passwd: hunter2, uid: hunter2}]\nmystery: hunter2\n", Options{})
	for _, w := range ud.Warnings {
		if strings.Contains(w, "hunter2") {
			t.Errorf("warning leaks a value: %q", w)
		}
	}
}

func TestDecodeWriteFileContentUndoesEachEncoding(t *testing.T) {
	plain := []byte("hello\nworld\n")
	gzipped := gz(t, plain)
	b64 := base64.StdEncoding.EncodeToString(plain)
	gzb64 := base64.StdEncoding.EncodeToString(gzipped)
	tests := []struct {
		name, enc string
		in        []byte
		wantErr   bool
	}{
		{"no encoding is verbatim", "", plain, false},
		{"text/plain is verbatim", "text/plain", plain, false},
		{"b64", "b64", []byte(b64), false},
		{"base64 with line breaks", "base64", []byte(b64[:8] + "\n" + b64[8:]), false},
		{"gzip", "gzip", gzipped, false},
		{"gz", "gz", gzipped, false},
		{"gz+b64", "gz+b64", []byte(gzb64), false},
		{"gzip+base64 in upper case", "GZIP+BASE64", []byte(gzb64), false},
		{"unknown encoding is refused", "rot13", plain, true},
		{"bad base64 is refused", "b64", []byte("!!!"), true},
		{"bad gzip is refused", "gz", plain, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeWriteFileContent(tc.enc, tc.in)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("want error, got %q", got)
				}
				return
			}
			if err != nil || !bytes.Equal(got, plain) {
				t.Fatalf("got %q, %v", got, err)
			}
		})
	}
}

func TestSizeCapsStopOversizedAndBombDocuments(t *testing.T) {
	bomb := gz(t, bytes.Repeat([]byte("A"), 4<<20))
	bombPart := "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: application/x-gzip\nContent-Transfer-Encoding: base64\n\n" +
		base64.StdEncoding.EncodeToString(bomb) + "\n--b--\n"
	tests := []struct {
		name string
		raw  []byte
		opts Options
	}{
		{"raw user-data over MaxSize", bytes.Repeat([]byte("x"), 17<<10), Options{MaxSize: 16 << 10}},
		{"whole-document gzip bomb", bomb, Options{MaxDecompressed: 1 << 20}},
		{"gzip bomb in a MIME part", []byte(bombPart), Options{MaxDecompressed: 1 << 20}},
		{"too many parts", []byte("#cloud-config-archive\n" + strings.Repeat("- x\n", 20)), Options{MaxParts: 10}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(context.Background(), tc.raw, tc.opts)
			if !errors.Is(err, ErrTooLarge) {
				t.Fatalf("want ErrTooLarge, got %v", err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
		})
	}
}

func TestAGzipPartThatDoesNotDecompressFailsTheUserDataLikeCloudInit(t *testing.T) {
	raw := "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: application/x-gzip\n\nnot gzip\n--b--\n"
	_, err := Parse(context.Background(), []byte(raw), Options{})
	if err == nil || !strings.Contains(err.Error(), "application/x-gzip") {
		t.Fatalf("want a decompression error naming the part type, got %v", err)
	}
}

func TestCorruptWholeDocumentGzipIsUsedAsIsWithAWarning(t *testing.T) {
	raw := gz(t, []byte("#cloud-config\nhostname: x\n"))
	raw = raw[:len(raw)-6]
	ud, err := Parse(context.Background(), raw, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ud.Parts) != 1 || ud.Parts[0].ContentType != TypeNotMultipart || len(ud.Warnings) == 0 {
		t.Fatalf("parts %+v warnings %q", ud.Parts, ud.Warnings)
	}
}

func TestScriptFrequenciesFollowCloudInit(t *testing.T) {
	raw, _ := os.ReadFile("testdata/corpus/frequencies.txt")
	ud := mustParse(t, string(raw), Options{})
	var got []Frequency
	for _, p := range ud.Parts {
		f, ok := p.ScriptFrequency()
		if !ok {
			t.Fatalf("%s (%s) is not a script", p.Filename, p.ContentType)
		}
		got = append(got, f)
	}
	want := []Frequency{PerBoot, PerInstance, PerOnce, PerBoot}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("frequencies %v, want %v", got, want)
	}
	if _, ok := (&Part{ContentType: TypeCloudConfig}).ScriptFrequency(); ok {
		t.Error("cloud-config must not be a script")
	}
}

func TestJinjaTemplates(t *testing.T) {
	tmpl := "## template: jinja\n#cloud-config\nhostname: {{ v1.local_hostname }}\n"
	t.Run("render from instance data", func(t *testing.T) {
		ud := mustParse(t, tmpl, Options{InstanceData: testInstanceData})
		if ud.Config["hostname"] != "ip-10-0-0-5" || ud.Parts[0].Type() != TypeCloudConfig || ud.Parts[0].ContentType != TypeJinja {
			t.Fatalf("config %v part %+v", ud.Config, ud.Parts[0])
		}
	})
	t.Run("without instance data the part is skipped with a warning", func(t *testing.T) {
		ud := mustParse(t, tmpl, Options{})
		if len(ud.Config) != 0 || len(ud.Warnings) == 0 || !strings.Contains(ud.Warnings[0], "no instance data") {
			t.Fatalf("config %v warnings %q", ud.Config, ud.Warnings)
		}
	})
	t.Run("blocks, filters and method calls render", func(t *testing.T) {
		ud := mustParse(t, "## template: jinja\n#cloud-config\n{% if v1.region.startswith('eu') %}\na: {{ v1.region | upper }}\n{% endif %}\nb: {{ v1.nope | default('x') }}\n", Options{InstanceData: testInstanceData})
		if ud.Config["a"] != "EU-CENTRAL-1" || ud.Config["b"] != "x" || len(ud.TemplateErrors) != 0 {
			t.Fatalf("config %v warnings %q", ud.Config, ud.Warnings)
		}
	})
	t.Run("a template that fails is a TemplateError and the rest goes on", func(t *testing.T) {
		doc := "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b\"\n\n--b\nContent-Type: text/jinja2\n\n## template: jinja\n#cloud-config\n{{ nope.deeper }}\n--b\nContent-Type: text/cloud-config\n\n#cloud-config\nhostname: kept\n--b--\n"
		ud := mustParse(t, doc, Options{InstanceData: testInstanceData})
		if ud.Config["hostname"] != "kept" || len(ud.TemplateErrors) != 1 {
			t.Fatalf("config %v template errors %v", ud.Config, ud.TemplateErrors)
		}
		var terr *TemplateError
		if !errors.As(error(ud.TemplateErrors[0]), &terr) || !strings.Contains(terr.Error(), `"nope" is undefined`) || !strings.Contains(ud.Warnings[0], "part-001") {
			t.Fatalf("error %v warnings %q", ud.TemplateErrors[0], ud.Warnings)
		}
	})
	t.Run("a null value renders as python's None", func(t *testing.T) {
		// No availability zone and no identity document: cloud-init's
		// v1.region is None.
		out, err := RenderJinja([]byte("## template: jinja\n{{ v1.region }} {{ v1.availability_zone }}\n"), InstanceData(map[string]any{"instance-id": "i-1"}))
		if err != nil || string(out) != "None None\n" {
			t.Fatalf("got %q, %v", out, err)
		}
	})
	t.Run("a syntax error names its line", func(t *testing.T) {
		_, err := RenderJinja([]byte("## template: jinja\na\nb\n{{ v1.region | }}\n"), testInstanceData)
		if err == nil || !strings.Contains(err.Error(), "line 3") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("a rendered script keeps its frequency", func(t *testing.T) {
		ud := mustParse(t, "## template: jinja\n#!/bin/sh\necho {{ v1.instance_id }}\n", Options{InstanceData: testInstanceData})
		f, ok := ud.Parts[0].ScriptFrequency()
		if !ok || f != PerInstance || string(ud.Parts[0].Content()) != "#!/bin/sh\necho i-0123456789abcdef0\n" {
			t.Fatalf("part %+v content %q", ud.Parts[0], ud.Parts[0].Content())
		}
	})
}

func TestPartHandlersAreSkippedWithAWarning(t *testing.T) {
	raw, _ := os.ReadFile("testdata/corpus/part-handler.txt")
	ud := mustParse(t, string(raw), Options{})
	found := false
	for _, w := range ud.Warnings {
		found = found || strings.Contains(w, "part-handler")
	}
	if !found || ud.Config["hostname"] != "with-part-handler" {
		t.Fatalf("warnings %q config %v", ud.Warnings, ud.Config)
	}
}

func TestParseMergeHow(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr bool
	}{
		{"list(append)+dict(recurse_array)+str()", "list(append)+dict(recurse_array)+str()", false},
		{" List( Append , Recurse-Str ) ", "list(append,recurse_str)", false},
		{"", "", false},
		{"list", "", true},
		{"list(append", "", true},
	}
	for _, tc := range tests {
		got, err := ParseMergeHow(tc.in)
		if (err != nil) != tc.wantErr || err == nil && got.String() != tc.want {
			t.Errorf("ParseMergeHow(%q) = %q, %v", tc.in, got, err)
		}
	}
}

func includeDoc(url string) string { return "#include\n" + url + "\n" }

func TestIncludeFetchesOverHTTPWithRetries(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) < 3 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "#cloud-config\nhostname: fetched\n")
	}))
	defer srv.Close()
	ud := mustParse(t, includeDoc(srv.URL), Options{Fetcher: &HTTPFetcher{Backoff: 1}})
	if ud.Config["hostname"] != "fetched" || hits.Load() != 3 {
		t.Fatalf("config %v after %d requests", ud.Config, hits.Load())
	}
}

func TestIncludeFailuresFailTheUserData(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/404":
			http.NotFound(w, r)
		case "/big":
			w.Write(bytes.Repeat([]byte("x"), 2048))
		case "/redirect-ftp":
			http.Redirect(w, r, "ftp://127.0.0.1/x", http.StatusFound)
		}
	}))
	defer srv.Close()
	tests := []struct{ name, url, want string }{
		{"a 404 is not retried", srv.URL + "/404", "status 404"},
		{"a body over the cap", srv.URL + "/big", "larger than 1024"},
		{"a redirect to another scheme", srv.URL + "/redirect-ftp", "redirect"},
		{"a file URL", "file:///etc/passwd", "only http and https"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(context.Background(), []byte(includeDoc(tc.url)), Options{Fetcher: &HTTPFetcher{MaxSize: 1024, Backoff: 1}})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want error containing %q, got %v", tc.want, err)
			}
		})
	}
}

func TestIncludeOnceIsCachedPerInstance(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		fmt.Fprint(w, "#cloud-config\nruncmd: [x]\n")
	}))
	defer srv.Close()
	dir := filepath.Join(t.TempDir(), "urlcache")
	doc := "#include-once\n" + srv.URL + "/once\n#include " + srv.URL + "/always\n"
	for i := 0; i < 3; i++ {
		mustParse(t, doc, Options{IncludeOnceDir: dir})
	}
	if got := hits.Load(); got != 4 { // once + 3 × always
		t.Fatalf("%d fetches, want 4", got)
	}
	fi, err := os.Stat(filepath.Join(dir, includeOnceName(srv.URL+"/once")))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("cache file: %v %v", fi, err)
	}
	ud := mustParse(t, doc, Options{IncludeOnceDir: dir, NoInclude: true})
	if !reflect.DeepEqual(ud.Config["runcmd"], []any{"x"}) || len(ud.Warnings) == 0 {
		t.Fatalf("offline run: config %v warnings %q", ud.Config, ud.Warnings)
	}
}

func TestIncludeLoopsStop(t *testing.T) {
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, includeDoc(srv.URL))
	}))
	defer srv.Close()
	_, err := Parse(context.Background(), []byte(includeDoc(srv.URL)), Options{})
	if err == nil || !strings.Contains(err.Error(), "nested") {
		t.Fatalf("want a nesting error, got %v", err)
	}
}

func TestInspectReportsPartsAndMergedConfig(t *testing.T) {
	raw, _ := os.ReadFile("testdata/corpus/multipart-basic.txt")
	in, err := Inspect(context.Background(), raw, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(in.Parts) != 2 || in.Parts[0].Filename != "cloud-config.txt" || in.Parts[1].ContentType != TypeShellScript ||
		in.Parts[1].Size != len("#!/bin/bash\necho \"script part\"\n") || len(in.Parts[1].SHA256) != 64 {
		t.Fatalf("parts %+v", in.Parts)
	}
	if in.CloudConfig["hostname"] != "mime-host" {
		t.Fatalf("cloud_config %v", in.CloudConfig)
	}
}

func TestInstanceDataFeedsJinjaFromIMDSMetadata(t *testing.T) {
	meta := map[string]any{
		"instance-id":    "i-abc",
		"local-hostname": "ip-10-1-2-3.ec2.internal",
		"placement":      map[string]any{"availability-zone": "us-east-1a", "region": "us-east-1"},
	}
	tmpl := "## template: jinja\n#cloud-config\nhostname: {{ v1.local_hostname }}\nruncmd: ['{{ instance_id }} {{ v1.region }} {{ ds.meta_data.placement.availability_zone }} {{ v1.instance_type }}']\n"
	ud := mustParse(t, tmpl, Options{InstanceData: InstanceData(meta)})
	// cloud-init's local_hostname is local-hostname's first label.
	if ud.Config["hostname"] != "ip-10-1-2-3" {
		t.Fatalf("config %v warnings %q", ud.Config, ud.Warnings)
	}
	want := []any{"i-abc us-east-1 us-east-1a " + MissingJinjaPrefix + "instance_type"}
	if !reflect.DeepEqual(ud.Config["runcmd"], want) {
		t.Fatalf("runcmd %v, want %v", ud.Config["runcmd"], want)
	}
}

func TestScriptContentFixesCRLFScriptsOnly(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"a CRLF script gets LF endings", "#!/bin/bash\r\necho hi\r\n", "#!/bin/bash\necho hi\n"},
		{"an LF script is unchanged", "#!/bin/sh\necho a\r\n", "#!/bin/sh\necho a\r\n"},
		{"non-scripts are unchanged", "#cloud-config\r\na: 1\r\n", "#cloud-config\r\na: 1\r\n"},
		{"empty stays empty", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(ScriptContent([]byte(tc.in))); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
	raw, _ := os.ReadFile("testdata/corpus/script.txt")
	crlf := bytes.ReplaceAll(raw, []byte("\n"), []byte("\r\n"))
	ud := mustParse(t, string(crlf), Options{})
	if f, ok := ud.Parts[0].ScriptFrequency(); !ok || f != PerInstance || !bytes.Equal(ScriptContent(ud.Parts[0].Content()), raw) {
		t.Fatalf("CRLF script part %+v", ud.Parts[0])
	}
}

func TestLookupIsAskedOnceAndIncludesAreFetchedOnce(t *testing.T) {
	doc := "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b\"\n\n" +
		"--b\nContent-Type: text/cloud-config\nLaunch-Index: 1\n\n#cloud-config\nhostname: one\n" +
		"--b\nContent-Type: text/cloud-config\nLaunch-Index: 0\n\n#cloud-config\nhostname: zero\n" +
		"--b\nContent-Type: text/x-include-url\n\nhttp://example.invalid/more\n" +
		"--b\nContent-Type: text/jinja2\n\n## template: jinja\n#cloud-config\ntimezone: {{ v1.region }}\n--b--\n"
	fetches, lookups := 0, 0
	opts := Options{
		Fetcher: FetcherFunc(func(context.Context, string) ([]byte, error) {
			fetches++
			return []byte("#cloud-config\nlocale: C.UTF-8\n"), nil
		}),
		Lookup: func(_ context.Context, o *Options, launchIndex, instanceData bool) error {
			lookups++
			if !launchIndex || !instanceData {
				t.Errorf("Lookup(launchIndex=%v, instanceData=%v), want both asked for", launchIndex, instanceData)
			}
			one := 1
			o.LaunchIndex, o.InstanceData = &one, InstanceData(map[string]any{"placement": map[string]any{"availability-zone": "eu-west-1b"}})
			return nil
		},
	}
	ud, err := Parse(context.Background(), []byte(doc), opts)
	if err != nil {
		t.Fatal(err)
	}
	if fetches != 1 || lookups != 1 {
		t.Errorf("%d fetches and %d lookups, want 1 each", fetches, lookups)
	}
	if got := ud.Config["hostname"]; got != "one" {
		t.Errorf("hostname = %v, want the part for launch index 1", got)
	}
	if got := ud.Config["timezone"]; got != "eu-west-1" {
		t.Errorf("timezone = %v, want the template rendered with the looked-up data", got)
	}
	if ud.Config["locale"] != "C.UTF-8" {
		t.Errorf("the included document is missing: %v", ud.Config)
	}
}

func TestIncludesShareTheFetchersConnections(t *testing.T) {
	var mu sync.Mutex
	remotes := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		remotes[r.RemoteAddr]++
		mu.Unlock()
		fmt.Fprintf(w, "#cloud-config\nbootcmd: [echo %s]\n", r.URL.Path)
	}))
	defer srv.Close()
	// The default fetcher: Options.Fetcher left nil.
	mustParse(t, "#include\n"+srv.URL+"/a\n"+srv.URL+"/b\n"+srv.URL+"/c\n", Options{})
	mu.Lock()
	defer mu.Unlock()
	if len(remotes) != 1 {
		t.Errorf("three includes came on %d connections (%v), want one kept alive", len(remotes), remotes)
	}
}

func TestKeysFlintReadsAreNotReportedAsUnhandled(t *testing.T) {
	ud, err := Parse(context.Background(), []byte("#cloud-config\nuser: {name: admin, groups: [adm]}\nusers: [default]\n"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range ud.Warnings {
		if strings.Contains(w, "not handled") {
			t.Errorf("warned: %q", w)
		}
	}
	if _, ok := ud.Config["user"].(map[string]any); !ok {
		t.Errorf("user: not kept in the merged document for the users handler: %v", ud.Config["user"])
	}
}

func TestBinaryDecodesAsPyYAMLDoes(t *testing.T) {
	for in, want := range map[string]string{
		"QUJD":          "ABC",
		"QUJD\nRA==":    "ABCD",
		"QU JD RA==":    "ABCD",
		"QUJDRA==QUJD":  "ABCD", // a complete pad ends the data
		"QUJD\n  ...\n": "ABC",
		"":              "",
	} {
		got, err := pyBase64(in)
		if err != nil || string(got) != want {
			t.Errorf("pyBase64(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"QUJDR", "QUJDRA", "QUJDRA=", "QUJDRA...."} {
		if got, err := pyBase64(bad); err == nil {
			t.Errorf("pyBase64(%q) = %q, want an error as binascii gives", bad, got)
		}
	}
}
