package rootfs

import (
	"os"
	"strconv"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// KillBeforeRenameEnv names the crash tests' variable: with it set to N,
// the process kills itself with SIGKILL on its way into its N-th atomic
// replacement (a written file, a semaphore, a switched link), so a test
// can stop a real run at every point where what is on disk changes, the
// boundaries between handlers among them. Unset, it costs a comparison.
const KillBeforeRenameEnv = "FLINT_TEST_KILL_BEFORE_RENAME"

var (
	// killBeforeRename is read on the first rename, not at start-up:
	// the first Getenv copies the environment, which one-shot commands
	// that publish nothing should not pay for.
	killBeforeRename = sync.OnceValue(func() int64 {
		n, _ := strconv.ParseInt(os.Getenv(KillBeforeRenameEnv), 10, 64)
		return n
	})
	renames atomic.Int64
)

// crashPoint is called just before every rename that publishes a change.
func crashPoint() {
	if n := killBeforeRename(); n > 0 && renames.Add(1) == n {
		unix.Kill(os.Getpid(), unix.SIGKILL)
		select {} // the signal is on its way; never publish the change
	}
}
