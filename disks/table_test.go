package disks

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flint-dev/flint/internal/testenv"
)

// sfdiskImage makes an image file of mib MiB partitioned by sfdisk with
// script, then extends the file to grownMiB, as a volume bigger than its
// image is.
func sfdiskImage(t *testing.T, mib, grownMiB int64, script string) string {
	t.Helper()
	sfdisk := testenv.Tool(t, "sfdisk")
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, mib<<20); err != nil {
		t.Fatal(err)
	}
	if script != "" {
		cmd := exec.Command(sfdisk, "--no-reread", "--no-tell-kernel", "-q", img)
		cmd.Stdin = strings.NewReader(script)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("sfdisk: %v: %s", err, out)
		}
	}
	if err := os.Truncate(img, grownMiB<<20); err != nil {
		t.Fatal(err)
	}
	return img
}

type sfdiskDump struct {
	PartitionTable struct {
		Label      string `json:"label"`
		LastLBA    int64  `json:"lastlba"`
		Partitions []struct {
			Node  string `json:"node"`
			Start int64  `json:"start"`
			Size  int64  `json:"size"`
		} `json:"partitions"`
	} `json:"partitiontable"`
}

func sfdiskRead(t *testing.T, img string) sfdiskDump {
	t.Helper()
	out, err := exec.Command("sfdisk", "-J", img).Output()
	if err != nil {
		t.Fatalf("sfdisk -J %s: %v", img, err)
	}
	var d sfdiskDump
	if err := json.Unmarshal(out, &d); err != nil {
		t.Fatalf("sfdisk -J output: %v", err)
	}
	return d
}

func TestGrowPartitionEditsTheTableAsSfdiskReadsIt(t *testing.T) {
	const mib = 1 << 20 / 512
	cases := []struct {
		name      string
		script    string
		partnum   int
		wantSize  int64 // sectors after growth
		otherPart int   // index of another partition that must not move
	}{
		{"a GPT's last partition takes the disk up to the backup table at the new end",
			"label: gpt\n,\n", 1, 64*mib - 2048 - 33, -1},
		{"an MBR's last primary partition takes the disk to its end",
			"label: dos\n,\n", 1, 64*mib - 2048, -1},
		{"a GPT root after a BIOS boot partition grows and the first one stays",
			"label: gpt\n,1MiB,21686148-6449-6E6F-744E-656564454649\n,\n", 2, 64*mib - 4096 - 33, 0},
		{"an MBR partition 2 after partition 1 grows and partition 1 stays",
			"label: dos\n,4MiB\n,\n", 2, 64*mib - 2048 - 4*mib, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			img := sfdiskImage(t, 32, 64, c.script)
			before := sfdiskRead(t, img)
			plan, err := GrowPartition(img, c.partnum)
			if err != nil {
				t.Fatalf("GrowPartition: %v", err)
			}
			after := sfdiskRead(t, img)
			p := after.PartitionTable.Partitions[c.partnum-1]
			if p.Size != c.wantSize || plan.NewSectors != c.wantSize {
				t.Errorf("partition %d size = %d (plan %d), want %d", c.partnum, p.Size, plan.NewSectors, c.wantSize)
			}
			if p.Start != before.PartitionTable.Partitions[c.partnum-1].Start {
				t.Errorf("partition start moved from %d to %d", before.PartitionTable.Partitions[c.partnum-1].Start, p.Start)
			}
			if c.otherPart >= 0 && after.PartitionTable.Partitions[c.otherPart] != before.PartitionTable.Partitions[c.otherPart] {
				t.Errorf("partition %d changed: %+v -> %+v", c.otherPart+1, before.PartitionTable.Partitions[c.otherPart], after.PartitionTable.Partitions[c.otherPart])
			}
			// sfdisk --verify checks the backup GPT header and array at
			// the disk's end and both CRCs.
			if out, err := exec.Command("sfdisk", "--verify", img).CombinedOutput(); err != nil || bytes.Contains(out, []byte("corrupt")) {
				t.Errorf("sfdisk --verify after growth: %v: %s", err, out)
			}
			if _, err := GrowPartition(img, c.partnum); !errors.Is(err, ErrNoChange) {
				t.Errorf("second GrowPartition = %v, want no change", err)
			}
		})
	}
}

func TestGrowPartitionRefusesWhatItCannotIdentify(t *testing.T) {
	cases := []struct {
		name    string
		script  string
		partnum int
		want    string
	}{
		{"a disk without a partition table", "", 1, "no partition table"},
		{"a partition followed by another", "label: gpt\n,8MiB\n,\n", 1, "no change necessary"},
		{"an MBR logical partition", "label: dos\n,,E\n,8MiB\n", 5, "logical partition"},
		{"a partition number the table lacks", "label: gpt\n,8MiB\n", 3, "does not exist"},
		{"an MBR extended partition", "label: dos\n,8MiB,E\n", 1, "extended partition"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			img := sfdiskImage(t, 12, 16, c.script)
			before := fingerprint(t, img)
			_, err := GrowPartition(img, c.partnum)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("GrowPartition = %v, want an error with %q", err, c.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is more than one line: %q", err)
			}
			if after := fingerprint(t, img); !bytes.Equal(before, after) {
				t.Error("the image changed although growth was refused")
			}
		})
	}
}

func TestPlanGrowPartRefusesADamagedGPT(t *testing.T) {
	img := sfdiskImage(t, 32, 64, "label: gpt\n,\n")
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, 2*512+40); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x5A // flip bits of entry 1's last LBA
	if _, err := f.WriteAt(b, 2*512+40); err != nil {
		t.Fatal(err)
	}
	_, err = PlanGrowPart(f, 64<<20, 512, 1)
	if err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("PlanGrowPart on a damaged array = %v, want a checksum error", err)
	}
}
