package builtin

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/flint-dev/flint/handlers"
	"github.com/flint-dev/flint/internal/state"
)

// finalMessageHandler prints cloud-config `final_message` (or cloud-init's
// default) to the console and the log at the end of every boot, with
// $UPTIME, $TIMESTAMP, $VERSION and $DATASOURCE (any case, also as
// {{ jinja }} variables) substituted, and records boot-finished in the
// instance directory as cloud-init does.
var finalMessageHandler = handlers.Builtin{Name: "final-message", Frequency: state.PerBoot, Run: runFinalMessage}

// Version is flint's version as messages show it; cmd/flint sets it.
var Version = "dev"

// defaultFinalMessage is cloud-init's default, word for word, so tools
// that wait for "Cloud-init v. ... finished at" on the console keep working.
const defaultFinalMessage = "## template: jinja\n" +
	"Cloud-init v. {{version}} finished at {{timestamp}}. Datasource {{datasource}}.  Up {{uptime}} seconds"

// finalDatasource is what $DATASOURCE says.
const finalDatasource = "DataSourceEc2 (flint)"

var (
	templateHeader = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`(?i)^##\s*template:\s*(\S*)`) })
	basicVar       = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`\$\{([A-Za-z0-9_.]+)\}|\$([A-Za-z0-9_.]+)`) })
	jinjaVar       = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`\{\{\s*([A-Za-z0-9_]+)\s*\}\}`) })
)

// renderFinalMessage renders msg as cloud-init's final_message module
// does: an empty message is the default; a "## template: jinja" first
// line selects {{ var }} substitution, else $var/${var} substitution.
// Variables are uptime, timestamp, version and datasource, in lower or
// upper case. Unlike cloud-init, an unknown variable is left as written
// instead of dropping the whole message.
func renderFinalMessage(msg string, vars map[string]string) string {
	msg = strings.TrimSpace(msg)
	if msg == "" {
		msg = defaultFinalMessage
	}
	lookup := func(name string) (string, bool) {
		if v, ok := vars[name]; ok {
			return v, true
		}
		v, ok := vars[strings.ToLower(name)]
		return v, ok && strings.ToUpper(name) == name
	}
	first, rest, _ := strings.Cut(msg, "\n")
	if m := templateHeader().FindStringSubmatch(first); m != nil {
		if strings.EqualFold(m[1], "jinja") {
			return jinjaVar().ReplaceAllStringFunc(rest, func(s string) string {
				if v, ok := lookup(jinjaVar().FindStringSubmatch(s)[1]); ok {
					return v
				}
				return s
			})
		}
		msg = rest
	}
	return basicVar().ReplaceAllStringFunc(msg, func(s string) string {
		sm := basicVar().FindStringSubmatch(s)
		name := sm[1] + sm[2]
		// "$UPTIME." ends a sentence; cloud-init would read a key path.
		trail := ""
		if sm[2] != "" {
			trimmed := strings.TrimRight(name, ".")
			name, trail = trimmed, name[len(trimmed):]
		}
		if v, ok := lookup(name); ok {
			return v + trail
		}
		return s
	})
}

func runFinalMessage(ctx context.Context, b *handlers.Boot) error {
	cc, err := b.CloudConfig(ctx)
	if err != nil {
		return err
	}
	msg := ""
	if cc.FinalMessage != nil {
		msg = *cc.FinalMessage
	}
	uptime := "??"
	if u, err := os.ReadFile("/proc/uptime"); err == nil {
		if f := strings.Fields(string(u)); len(f) > 0 {
			uptime = f[0]
		}
	}
	ts := time.Now().UTC().Format("Mon, 02 Jan 2006 15:04:05 -0700")
	vars := map[string]string{"uptime": uptime, "timestamp": ts, "version": Version, "datasource": finalDatasource}
	out := renderFinalMessage(msg, vars)
	if b.DryRun {
		b.Note("would print the final message (%d bytes)", len(out))
		return nil
	}
	if b.Console != nil {
		fmt.Fprintln(b.Console, out)
	}
	b.Log.Info("final message", "message", out)
	b.Note("final message printed (%d bytes)", len(out))
	if b.State != nil && b.State.Instance() != "" {
		if err := b.State.WriteInstanceFile("boot-finished", []byte(fmt.Sprintf("%s - %s - v. %s\n", uptime, ts, Version))); err != nil {
			return err
		}
	}
	return nil
}
