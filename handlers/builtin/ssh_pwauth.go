package builtin

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/flint-dev/flint/cloudconfig"
	"github.com/flint-dev/flint/handlers"
	"github.com/flint-dev/flint/internal/rootfs"
	"github.com/flint-dev/flint/internal/state"
)

// sshPwauthHandler is cloud-init's ssh_pwauth (cc_set_passwords), once
// per instance, after the users and their keys: sshd's
// PasswordAuthentication as cloudconfig.SSHPwauth decides it, in the
// drop-in sshd_config.d/50-cloud-init.conf when sshd_config includes its
// drop-ins (else in sshd_config). The new file is checked with the
// image's `sshd -t`; a configuration sshd refuses is rolled back to what
// was there, so sshd never starts on a file it cannot read. A running ssh
// service is restarted when the file changed, as cloud-init does; at
// first boot sshd starts after flint and reads the new file itself.
var sshPwauthHandler = handlers.Builtin{Name: "ssh-pwauth", Frequency: state.PerInstance, Run: runSSHPwauth}

// sshdTimeout bounds sshd -t and the service commands.
const sshdTimeout = 30 * time.Second

// sshdCheck runs sshd -t on the root's configuration (replaced in tests,
// whose roots hold no sshd). It returns checked=false when the image has
// no sshd to check with.
var sshdCheck = func(ctx context.Context, b *handlers.Boot) (checked bool, err error) {
	const sshd = "usr/sbin/sshd"
	if _, err := b.Root.Stat(sshd, rootfs.InRoot); err != nil {
		return false, nil
	}
	// sshd -t refuses to run without its privilege separation directory,
	// which ssh.service's RuntimeDirectory makes when sshd starts: after
	// flint at boot, and never in an image being baked. Make it for the
	// check as systemd would, and leave nothing behind that was not there.
	const privsep = "run/sshd"
	if _, err := b.Root.Stat(privsep, rootfs.InRoot); err != nil {
		if err := b.Root.MkdirAll(privsep, 0o755, rootfs.NoOwner, rootfs.InRoot); err != nil {
			return true, fmt.Errorf("sshd -t needs /%s: %w", privsep, err)
		}
		defer b.Root.Remove(privsep, rootfs.InRoot)
	}
	return true, b.RunProcess(ctx, handlers.Process{Name: "sshd -t", Argv: []string{"/" + sshd, "-t"}, Timeout: sshdTimeout, Explain: true})
}

func runSSHPwauth(ctx context.Context, b *handlers.Boot) error {
	ud, err := b.UserData(ctx)
	if err != nil {
		return err
	}
	v, present := ud.Config["ssh_pwauth"]
	main, err := readOptional(b, cloudconfig.SSHDConfigPath)
	if err != nil {
		return err
	}
	dropInPath := cloudconfig.SSHDConfigPath + ".d/50-cloud-init.conf"
	dropIn, err := readOptional(b, dropInPath)
	if err != nil {
		return err
	}
	f, restart, err := cloudconfig.SSHPwauth(cloudconfig.SSHPwauthInput{Value: v, Present: present, SSHDConfig: main, DropIn: dropIn})
	if err != nil {
		return err
	}
	if f == nil {
		if present {
			b.Note("sshd's PasswordAuthentication already as configured")
		}
		return nil
	}
	old := main
	if f.Path == dropInPath {
		old = dropIn
	}
	b.Note("PasswordAuthentication %s in %s", pwauthValue(f.Content), f.Path)
	if b.DryRun {
		return nil
	}
	rel := strings.TrimPrefix(f.Path, "/")
	if err := b.Root.WriteFile(rel, f.Content, rootfs.WriteOptions{Perm: f.Mode, MkdirPerm: 0o755}); err != nil {
		return fmt.Errorf("ssh_pwauth: %w", err)
	}
	if checked, err := sshdCheck(ctx, b); err != nil {
		// sshd complains on several lines; its first names the problem.
		why, _, _ := strings.Cut(strings.TrimSpace(err.Error()), "\n")
		why = strings.TrimSpace(why)
		if rerr := restoreFile(b, rel, old, f.Mode); rerr != nil {
			return fmt.Errorf("ssh_pwauth: sshd -t refuses the configuration (%s), and restoring %s failed: %w", why, f.Path, rerr)
		}
		kept := "restored as it was"
		if old == nil {
			kept = "removed again"
		}
		return fmt.Errorf("ssh_pwauth: sshd -t refuses the configuration (%s); %s %s", why, f.Path, kept)
	} else if !checked {
		b.Note("no sshd in the image: %s not checked with sshd -t", f.Path)
	}
	if !restart {
		return nil
	}
	if !b.Live {
		return fmt.Errorf("restart ssh if it runs: %w", handlers.ErrNotLive)
	}
	restartSSH(ctx, b)
	return nil
}

// pwauthValue is the PasswordAuthentication value in an sshd config.
func pwauthValue(cfg []byte) string {
	for _, l := range strings.Split(string(cfg), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(l), " "); ok && strings.EqualFold(k, "PasswordAuthentication") {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

// restartSSH restarts the ssh service if it is running, as cloud-init
// does (Debian names it ssh, Fedora and Amazon Linux sshd); a service
// that is not running starts later on the new file.
func restartSSH(ctx context.Context, b *handlers.Boot) {
	for _, svc := range []string{"ssh", "sshd"} {
		if err := b.RunProcess(ctx, handlers.Process{Name: "systemctl is-active " + svc, Argv: []string{"systemctl", "is-active", "--quiet", svc + ".service"}, Timeout: sshdTimeout}); err != nil {
			continue
		}
		if err := b.RunProcess(ctx, handlers.Process{Name: "systemctl restart " + svc, Argv: []string{"systemctl", "restart", svc + ".service"}, Timeout: sshdTimeout}); err != nil {
			b.Note("restarting %s failed (%v): it reads the new setting when it restarts", svc, err)
			return
		}
		b.Note("restarted %s", svc)
		return
	}
	b.Note("ssh is not running: not restarted")
}

// readOptional reads a file below the root: nil when it does not exist.
func readOptional(b *handlers.Boot, path string) ([]byte, error) {
	data, err := b.Root.ReadFile(strings.TrimPrefix(path, "/"), rootfs.InRoot)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return data, nil
}

// restoreFile puts back what rel held before (old; nil: it did not exist).
func restoreFile(b *handlers.Boot, rel string, old []byte, mode fs.FileMode) error {
	if old == nil {
		return b.Root.Remove(rel, rootfs.InRoot)
	}
	return b.Root.WriteFile(rel, old, rootfs.WriteOptions{Perm: mode})
}
