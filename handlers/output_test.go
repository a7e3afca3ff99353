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
