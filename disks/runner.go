package disks

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// Runner runs the image's own tools (resize2fs, xfs_growfs, mkswap, sfdisk,
// mkfs.*). Tests pass a recording one where the tool cannot run here.
type Runner interface {
	Run(ctx context.Context, name string, args ...string) ([]byte, error)
}

// ExecRunner runs tools found on PATH.
type ExecRunner struct{}

// Run runs name with args and returns its combined output; a failure names
// the command and carries its last output line.
func (ExecRunner) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, oneLine(out))
	}
	return out, nil
}

// oneLine folds a tool's output into one line of at most 400 bytes, so an
// error stays one line and still carries the tool's reason.
func oneLine(b []byte) string {
	s := strings.Join(strings.Fields(strings.ReplaceAll(string(b), "\n", " | ")), " ")
	if len(s) > 400 {
		s = "..." + s[len(s)-400:]
	}
	return s
}
