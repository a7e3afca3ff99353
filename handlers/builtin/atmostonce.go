package builtin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/flint-dev/flint/handlers"
	"github.com/flint-dev/flint/internal/config"
	"github.com/flint-dev/flint/internal/rootfs"
	"github.com/flint-dev/flint/internal/state"
	"github.com/flint-dev/flint/userdata"
)

// scriptsSection is the scripts handler's flint.yaml section, read by
// every handler that runs user-data's programs.
const scriptsSection = "scripts"

// scriptsConfig is the `scripts:` section of flint.yaml. It applies to
// everything user-data makes flint run: boothooks, bootcmd, runcmd and
// script parts.
type scriptsConfig struct {
	// Timeout bounds one script (its whole process group); cloud-init has
	// none, but a hung script must not hold the boot forever.
	Timeout config.Duration `yaml:"timeout"`
}

// defaultScriptTimeout is long enough for real provisioning scripts
// (compiling, downloading) and short enough that a hung one ends the boot.
const defaultScriptTimeout = 30 * time.Minute

func scriptTimeout(b *handlers.Boot) (time.Duration, error) {
	var cfg scriptsConfig
	if err := b.Section(scriptsSection, &cfg); err != nil {
		return 0, err
	}
	if cfg.Timeout > 0 {
		return time.Duration(cfg.Timeout), nil
	}
	return defaultScriptTimeout, nil
}

// Paths of what user-data makes flint write, below the root.
const (
	// scriptsDir holds the per-boot, per-instance and per-once script
	// directories, like cloud-init's /var/lib/cloud/scripts.
	scriptsDir = state.Dir + "/scripts"
	// onceRecords holds the at-most-once records of per-once scripts,
	// which outlive instances.
	onceRecords = state.Dir + "/sem/scripts/per-once"
)

// instancePath is a path in the current instance's directory.
func instancePath(b *handlers.Boot, rel string) (string, error) {
	if b.State == nil || b.State.Instance() == "" {
		return "", errors.New("no instance directory (instance id not set)")
	}
	return b.State.InstanceDir(b.State.Instance()) + "/" + rel, nil
}

// bootIDFile identifies the current boot; per-boot records hold it.
var bootIDFile = "/proc/sys/kernel/random/boot_id"

func currentBootID() string {
	b, err := os.ReadFile(bootIDFile)
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}

// runRecord is the at-most-once record of one script. It is written,
// fsynced, before the script starts and completed after it ends, so a
// record without Finished means the script was interrupted (flint killed,
// power lost) and must not run again.
type runRecord struct {
	Started  time.Time  `json:"started"`
	BootID   string     `json:"boot_id,omitempty"`
	Finished *time.Time `json:"finished,omitempty"`
	// Result is "ok", the reason it failed, or "interrupted". It never
	// holds script output.
	Result string `json:"result,omitempty"`
}

// scriptRun is one program run at most once per scope.
type scriptRun struct {
	// Label names the script in notes and in the output log.
	Label string
	// Path is the script below the root.
	Path string
	// Record is the path of its runRecord below the root.
	Record string
	// PerBoot: the record holds for the current boot only.
	PerBoot bool
	// Shell runs the script with /bin/sh rather than executing it.
	Shell bool
}

// errNoRecord is wrapped by the error of a script, or a step, that was
// not run because its at-most-once record could not be written: it waits
// for a boot that can write it.
var errNoRecord = errors.New("its at-most-once record cannot be written")

// runAtMostOnce runs s unless its record says it already ran (in its
// scope). The record is made durable before the exec, so a crash during
// the script leaves it marked as started: the next run reports it as
// interrupted instead of running it again.
func runAtMostOnce(ctx context.Context, b *handlers.Boot, s scriptRun, timeout time.Duration) error {
	boot := ""
	if s.PerBoot {
		boot = currentBootID()
	}
	var rec runRecord
	if data, err := b.Root.ReadFile(s.Record, rootfs.InRoot); err == nil {
		if json.Unmarshal(data, &rec) != nil {
			// A torn record can only come from a crash around the exec.
			rec = runRecord{BootID: boot}
		}
		if !s.PerBoot || rec.BootID == boot {
			if rec.Finished != nil {
				b.Note("%s: already ran (%s)", s.Label, rec.Result)
				return nil
			}
			now := time.Now().UTC()
			rec.Finished, rec.Result = &now, "interrupted"
			if err := writeRecord(b, s.Record, rec); err != nil {
				// The next run says it again; it does not run it either.
				b.Unrecorded(err)
			}
			b.Note("%s: interrupted in an earlier run (started %s); not run again", s.Label, rec.Started.Format(time.RFC3339))
			return fmt.Errorf("%s: interrupted in an earlier run; not run again", s.Label)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: reading its run record: %w", s.Label, err)
	}
	if err := ctx.Err(); err != nil {
		// The run is being stopped: not starting is not running.
		return fmt.Errorf("%s: not run: %w", s.Label, err)
	}
	rec = runRecord{Started: time.Now().UTC(), BootID: boot}
	if err := writeRecord(b, s.Record, rec); err != nil {
		// Without a durable record the script could run twice: do not run it.
		b.Unrecorded(err)
		return fmt.Errorf("%s: not run: %w", s.Label, errNoRecord)
	}
	argv := []string{b.Root.Path(s.Path)}
	if s.Shell {
		argv = []string{"/bin/sh", argv[0]}
	}
	p := handlers.Process{Name: s.Label, Argv: argv, Env: []string{"INSTANCE_ID=" + b.InstanceID}, Timeout: timeout}
	err := b.RunProcess(ctx, p)
	for i := 0; i < 5 && errors.Is(err, syscall.ETXTBSY); i++ {
		// A fork elsewhere in the process may briefly hold the script's
		// write descriptor (golang/go#22315); it was not started.
		time.Sleep(time.Duration(i+1) * 20 * time.Millisecond)
		err = b.RunProcess(ctx, p)
	}
	now := time.Now().UTC()
	rec.Finished, rec.Result = &now, "ok"
	if err != nil {
		rec.Result = strings.TrimPrefix(err.Error(), s.Label+": ")
		b.Note("%s: %s", s.Label, rec.Result)
	} else {
		b.Note("%s: ok (exit status 0)", s.Label)
	}
	if werr := writeRecord(b, s.Record, rec); werr != nil {
		// Its record says it began: it does not run again either way.
		b.Unrecorded(werr)
		if err == nil {
			err = fmt.Errorf("%s: ran, but its result could not be recorded (%s)", s.Label, handlers.SeeStateWarning)
		}
	}
	return err
}

// unstored collects the scripts a run did not store or run because the
// state directory could not be written, for one line in the result.
type unstored []string

// add takes the error of storing or running the script label: true when
// it is the state directory's (reported once for the run), which it
// keeps for the line.
func (u *unstored) add(b *handlers.Boot, label string, err error, storing bool) bool {
	if storing {
		b.Unrecorded(err)
	} else if !errors.Is(err, errNoRecord) {
		return false
	}
	*u = append(*u, label)
	return true
}

// report gives the line, if any: what was not run, and why.
func (u unstored) report(b *handlers.Boot) {
	if len(u) > 0 {
		b.Partial("not run: %s: their scripts or at-most-once records cannot be written (%s); a boot that can write them runs them",
			strings.Join(u, ", "), handlers.SeeStateWarning)
	}
}

// stepRecords holds, in the instance's directory, the at-most-once
// records of handlers' steps that must not be done twice for an instance
// (a POST, a shutdown, passwords set, a disk overwritten): a step that
// is redone when its handler runs again (after a failure, or on a disk
// where the handler's semaphore cannot be written) would undo what
// happened since or do it twice.
const stepRecords = "sem/steps/"

// step is one thing a handler does at most once per instance.
type step struct {
	// key names its record (one file name).
	key string
	// what is the step in words, for the result's lines.
	what string
	// lazy: for a step that only must not undo what happened after the
	// run that did it (a password the user changed since): its record
	// is completed (done) after the step, and a step begun by a run
	// that did not get there (killed) is done again. Its record is made
	// durable with the run's state (one syncfs at its end), not by an
	// fsync of its own.
	lazy bool
}

func (s step) record(b *handlers.Boot) (string, error) {
	return instancePath(b, stepRecords+cleanFilename(s.key))
}

// begin writes the step's record before the step is done, and says
// whether to do it now: not when an earlier run of the instance began
// it (noted), nor when its record cannot be written. Then err says why,
// the cause is the run's one warning (Boot.Unrecorded), and the caller
// says what waits (wait) for a boot that can write the record.
func (s step) begin(b *handlers.Boot) (bool, error) {
	if b.DryRun {
		return true, nil
	}
	rel, err := s.record(b)
	if err != nil {
		return false, err
	}
	data, err := b.Root.ReadFile(rel, rootfs.InRoot)
	if err == nil {
		var rec runRecord
		json.Unmarshal(data, &rec)
		if !s.lazy || rec.Finished != nil {
			b.Note("%s: done by an earlier run (begun %s); not done again", s.what, rec.Started.Format(time.RFC3339))
			return false, nil
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("its at-most-once record cannot be read: %w", err)
	}
	if err := s.write(b, rel, runRecord{Started: time.Now().UTC()}); err != nil {
		b.Unrecorded(err)
		return false, errNoRecord
	}
	return true, nil
}

// done completes the record of a lazy step once the step is done.
func (s step) done(b *handlers.Boot) {
	rel, err := s.record(b)
	if err != nil || !s.lazy || b.DryRun {
		return
	}
	now := time.Now().UTC()
	rec := runRecord{Started: now, Finished: &now, Result: "ok"}
	if data, err := b.Root.ReadFile(rel, rootfs.InRoot); err == nil {
		json.Unmarshal(data, &rec)
		rec.Finished, rec.Result = &now, "ok"
	}
	if err := s.write(b, rel, rec); err != nil {
		// The next run does it again: nothing happened since this one.
		b.Unrecorded(err)
	}
}

func (s step) write(b *handlers.Boot, rel string, rec runRecord) error {
	data, _ := json.Marshal(rec)
	return b.Root.WriteFile(rel, append(data, '\n'), rootfs.WriteOptions{Perm: 0o600, MkdirPerm: 0o700, NoSync: s.lazy})
}

// wait is the result's line for a step not done because of err (from
// begin): a boot that can write its record does it.
func (s step) wait(b *handlers.Boot, err error) {
	if errors.Is(err, errNoRecord) {
		b.Partial("%s not done: %v (%s); a boot that can write it does it", s.what, err, handlers.SeeStateWarning)
		return
	}
	b.Partial("%s not done: %v", s.what, err)
}

// beginOrWait is begin, saying what waits when the record cannot be
// written.
func (s step) beginOrWait(b *handlers.Boot) bool {
	ok, err := s.begin(b)
	if err != nil {
		s.wait(b, err)
	}
	return ok
}

// forget removes the step's record when the step did not happen after
// all (every try refused), so a later boot tries again.
func (s step) forget(b *handlers.Boot) {
	rel, err := s.record(b)
	if err == nil {
		err = b.Root.Remove(rel, rootfs.InRoot)
	}
	if err != nil {
		b.Log.Warn("the step will not be tried again: its record cannot be removed", "step", s.what, "error", err)
	}
}

func writeRecord(b *handlers.Boot, rel string, rec runRecord) error {
	data, _ := json.Marshal(rec)
	return b.Root.WriteFile(rel, append(data, '\n'), rootfs.WriteOptions{Perm: 0o600, MkdirPerm: 0o700})
}

// writeScript stores a script 0700 (user-data is secret to everyone but
// root), rewriting it only when its content changed.
func writeScript(b *handlers.Boot, rel string, content []byte) error {
	if old, err := b.Root.ReadFile(rel, rootfs.InRoot); err == nil && bytes.Equal(old, content) {
		if fi, err := b.Root.Stat(rel, rootfs.InRoot); err == nil && fi.Mode().Perm() == 0o700 {
			return nil
		}
	}
	return b.Root.WriteFile(rel, content, rootfs.WriteOptions{Perm: 0o700, MkdirPerm: 0o700})
}

// needsShell reports whether a script must be run through /bin/sh: it has
// no "#!" line, which the kernel would refuse with ENOEXEC (a shell runs
// such a file as a shell script, and so do users' expectations).
func needsShell(content []byte) bool { return !bytes.HasPrefix(content, []byte("#!")) }

// dos2unix turns CRLF line ends into LF when the first line ends in CRLF:
// a script saved on Windows otherwise names "/bin/sh\r" as its interpreter.
func dos2unix(content []byte) []byte {
	nl := bytes.IndexByte(content, '\n')
	if nl <= 0 || content[nl-1] != '\r' {
		return content
	}
	return bytes.ReplaceAll(content, []byte("\r\n"), []byte("\n"))
}

// cleanFilename is cloud-init's clean_filename: "/" becomes "_", and only
// letters, digits and "_-.()" are kept, so a part's name is one safe path
// element. Names that would still be unsafe ("", ".", "..") become "_".
func cleanFilename(name string) string {
	var sb strings.Builder
	for _, r := range strings.ReplaceAll(name, "/", "_") {
		if r < 0x80 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_-.()", r)) {
			sb.WriteRune(r)
		}
	}
	switch s := sb.String(); s {
	case "", ".", "..":
		return "_"
	default:
		return s
	}
}

// shellify is cloud-init's util.shellify: a "#!/bin/sh" script with one
// line per command, a string as written, a list as single-quoted words.
func shellify(cmds []userdata.Command) []byte {
	var sb strings.Builder
	sb.WriteString("#!/bin/sh\n")
	for _, c := range cmds {
		if c.Argv != nil {
			for i, a := range c.Argv {
				if i > 0 {
					sb.WriteByte(' ')
				}
				sb.WriteString("'" + strings.ReplaceAll(a, "'", `'\''`) + "'")
			}
		} else {
			sb.WriteString(c.Shell)
		}
		sb.WriteByte('\n')
	}
	return []byte(sb.String())
}

// failures collects per-item errors into one line, so one bad item does
// not stop the others and the handler's reason names every one.
type failures struct {
	what  string
	total int
	errs  []string
}

func (f *failures) add(err error) {
	if err != nil {
		f.errs = append(f.errs, strings.ReplaceAll(err.Error(), "\n", " "))
	}
}

func (f *failures) err() error {
	if len(f.errs) == 0 {
		return nil
	}
	return fmt.Errorf("%d of %d %s failed: %s", len(f.errs), f.total, f.what, strings.Join(f.errs, "; "))
}
