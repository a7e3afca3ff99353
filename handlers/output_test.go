package handlers

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/flint-dev/flint/internal/rootfs"
)

func TestProcessOutputReachesTheJournalLineByLineWithinTheCap(t *testing.T) {
	root, err := rootfs.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	log, err := OpenOutputLog(root, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	log.Journal = func(process, line string) { got = append(got, process+": "+line) }
	w := log.Writer("part-001")
	w.Write([]byte("one\ntw"))
	w.Write([]byte("o\nthree"))
	w.Write([]byte(strings.Repeat("x", PerProcessCap))) // over the cap: cut
	w.Close()
	if want := []string{"part-001: one", "part-001: two"}; !reflect.DeepEqual(got[:2], want) {
		t.Fatalf("journal lines %q, want %q first", got[:2], want)
	}
	if len(got) != 3 || !strings.HasPrefix(got[2], "part-001: three") || len(got[2]) > PerProcessCap+len("part-001: ") {
		t.Fatalf("last journal line: %d lines, the last %d bytes", len(got), len(got[len(got)-1]))
	}
	b, _ := os.ReadFile(root.Path(OutputLogPath))
	if !strings.Contains(string(b), "one\ntwo\nthree") || !strings.Contains(string(b), "more bytes of output dropped") {
		t.Errorf("output log: %q…", b[:min(len(b), 80)])
	}
}

func TestOutputThatCannotBeKeptIsAnError(t *testing.T) {
	for name, tc := range map[string]struct {
		max     int64
		prepare func(dir string)
		want    string
	}{
		"the log is a directory": {0, func(dir string) {
			os.MkdirAll(dir+"/"+OutputLogPath+"/x", 0o755)
		}, "opening the output log"},
		"rotation fails, the output is still kept": {10, func(dir string) {
			os.MkdirAll(dir+"/var/log", 0o755)
			os.WriteFile(dir+"/"+OutputLogPath, []byte("0123456789"), 0o640)
			os.MkdirAll(dir+"/var/log/flint-output.log.1/x", 0o755) // a rename cannot replace it
		}, "rotating the output log"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			tc.prepare(dir)
			root, err := rootfs.Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer root.Close()
			log, err := OpenOutputLog(root, tc.max)
			if err != nil {
				t.Fatal(err)
			}
			w := log.Writer("part-001")
			w.Write([]byte("hello\n"))
			if err := w.Close(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Close: %v, want an error %q", err, tc.want)
			}
			if w.Err() == nil {
				t.Error("Err is nil after a failure")
			}
			if b, _ := os.ReadFile(root.Path(OutputLogPath)); tc.max > 0 && !strings.Contains(string(b), "hello") {
				t.Errorf("the output was lost with the rotation: %q", b)
			}
		})
	}
}
