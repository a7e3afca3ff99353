package packaging

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"time"
)

// CommandHelp is one subcommand as `flint --help` lists it, with what
// `flint NAME --help` printed.
type CommandHelp struct {
	Name, Summary, Help string
}

// commandLine matches a command row of `flint --help`: two spaces, the
// name, spaces, the summary.
var commandLine = regexp.MustCompile(`^  ([a-z][a-z0-9-]*) +(\S.*)$`)

// ParseCommands returns the commands listed in the output of `flint --help`.
func ParseCommands(help string) []CommandHelp {
	var cmds []CommandHelp
	for _, line := range strings.Split(help, "\n") {
		if m := commandLine.FindStringSubmatch(line); m != nil {
			cmds = append(cmds, CommandHelp{Name: m[1], Summary: m[2]})
		}
	}
	return cmds
}

// HelpText runs the binary with args and returns what it printed on
// stdout and stderr, whatever its exit status: a usage message is the
// help text, wherever and however a command prints it. Only a binary that
// cannot run or prints nothing is an error.
func HelpText(ctx context.Context, bin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return "", fmt.Errorf("%s %s: %w", bin, strings.Join(args, " "), err)
	}
	if out.Len() == 0 {
		return "", fmt.Errorf("%s %s printed no help text", bin, strings.Join(args, " "))
	}
	return out.String(), nil
}

// CollectHelp asks bin for its command list and each command's help.
func CollectHelp(ctx context.Context, bin string) (top string, cmds []CommandHelp, err error) {
	if top, err = HelpText(ctx, bin, "--help"); err != nil {
		return "", nil, err
	}
	cmds = ParseCommands(top)
	if len(cmds) == 0 {
		return "", nil, fmt.Errorf("%s --help lists no commands:\n%s", bin, top)
	}
	for i := range cmds {
		if cmds[i].Help, err = HelpText(ctx, bin, cmds[i].Name, "--help"); err != nil {
			return "", nil, err
		}
	}
	return top, cmds, nil
}

// roffEscape makes text safe inside a no-fill roff block: backslashes
// are printed with \e, and a line starting with a control character
// ("." or "'") is protected with the zero-width \&.
func roffEscape(s string) string {
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		line = strings.ReplaceAll(line, `\`, `\e`)
		if strings.HasPrefix(line, ".") || strings.HasPrefix(line, "'") {
			line = `\&` + line
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return b.String()
}

// ManPage renders flint(8) in roff: the command list and each command's
// help exactly as the binary prints them, and the files flint uses.
func ManPage(version string, date time.Time, top string, cmds []CommandHelp) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, ".TH FLINT 8 %q %q \"System Administration\"\n", date.UTC().Format("2006-01-02"), "flint "+version)
	b.WriteString(".SH NAME\nflint \\- first-boot provisioning and instance metadata for EC2-like instances\n")
	b.WriteString(".SH SYNOPSIS\n.B flint\n.I COMMAND\n[\\fIflags\\fR]\n.br\n.B ec2-metadata\n[\\fIflags\\fR]\n")
	b.WriteString(".SH DESCRIPTION\n" +
		"flint provisions a cloud instance at first boot (users, SSH keys, host keys, network interfaces, " +
		"kernel modules, cloud-init compatible user-data) from the instance metadata service, and answers " +
		"metadata queries. At boot it runs as \\fBflint.service\\fR; installed as \\fBec2-metadata\\fR it is that tool.\n")
	b.WriteString(".PP\n.nf\n" + roffEscape(top) + ".fi\n")
	b.WriteString(".SH COMMANDS\n")
	for _, c := range cmds {
		fmt.Fprintf(&b, ".SS %s\n%s\n.PP\n.nf\n%s.fi\n", c.Name, roffEscape(c.Summary), roffEscape(c.Help))
	}
	b.WriteString(".SH FILES\n" +
		".TP\n.I /etc/flint/flint.yaml\nconfiguration; drop-ins in \\fI/etc/flint/flint.d/*.yaml\\fR\n" +
		".TP\n.I /etc/flint/handlers.d/\nexec plug-ins, run after the built-in handlers\n" +
		".TP\n.I /etc/flint/disabled\nwhen present, flint.service does not run\n" +
		".TP\n.I /var/lib/flint/\nper-instance state and semaphores (removed by \\fBflint clean\\fR)\n" +
		".TP\n.I /run/flint/status.json\nthe status of this boot's run\n" +
		".TP\n.I /var/log/flint-output.log\noutput of the programs flint ran\n")
	b.WriteString(".SH SEE ALSO\n.BR cloud-init (1),\n.BR systemctl (1),\n.BR sshd_config (5)\n")
	return []byte(b.String())
}

// Gzip compresses a man page the way packaging policy wants it: maximum
// compression, no name or timestamp in the header (reproducible).
func Gzip(data []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(data); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
