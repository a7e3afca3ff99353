package ec2metadata

import "strings"

// kind is what a step prints.
type kind int

const (
	metricStep kind = iota // one value: "label: value"
	blockDevicesStep
	publicKeysStep
	tagsStep
	helpStep  // --help: the help text, exit 0
	usageStep // a bad argument: the help text, exit 1
)

// step is one unit of output, in the order the command line asked for it.
type step struct {
	kind  kind
	label string
	// path is the metadata path of a metric: relative to /latest/, or from
	// the server root when it starts with "/" (--path).
	path string
	// problem says what was wrong with the argument of a usageStep.
	problem string
}

func metric(label, path string) step { return step{kind: metricStep, label: label, path: path} }

// flag is one ec2-metadata option that prints something.
type flag struct {
	short, long string
	step        step
}

// flags lists the options of amazon-ec2-utils 2.0.1 in the order its --all
// prints them, then those upstream added later (-D, -Z, -R, -P).
var flags = []flag{
	{"-a", "--ami-id", metric("ami-id", "meta-data/ami-id")},
	{"-l", "--ami-launch-index", metric("ami-launch-index", "meta-data/ami-launch-index")},
	{"-m", "--ami-manifest-path", metric("ami-manifest-path", "meta-data/ami-manifest-path")},
	{"-n", "--ancestor-ami-ids", metric("ancestor-ami-ids", "meta-data/ancestor-ami-ids")},
	{"-b", "--block-device-mapping", step{kind: blockDevicesStep, label: "block-device-mapping"}},
	{"-i", "--instance-id", metric("instance-id", "meta-data/instance-id")},
	{"-t", "--instance-type", metric("instance-type", "meta-data/instance-type")},
	{"-h", "--local-hostname", metric("local-hostname", "meta-data/local-hostname")},
	{"-o", "--local-ipv4", metric("local-ipv4", "meta-data/local-ipv4")},
	{"-k", "--kernel-id", metric("kernel-id", "meta-data/kernel-id")},
	{"-z", "--availability-zone", metric("placement", "meta-data/placement/availability-zone")},
	{"-c", "--product-codes", metric("product-codes", "meta-data/product-codes")},
	{"-p", "--public-hostname", metric("public-hostname", "meta-data/public-hostname")},
	{"-v", "--public-ipv4", metric("public-ipv4", "meta-data/public-ipv4")},
	{"-u", "--public-keys", step{kind: publicKeysStep, label: "public-keys"}},
	// The script asks for "latest//meta-data/ramdisk-id" (a stray slash in
	// its table); IMDS treats it as the clean path, which is what we ask for.
	{"-r", "--ramdisk-id", metric("ramdisk-id", "meta-data/ramdisk-id")},
	{"-e", "--reservation-id", metric("reservation-id", "meta-data/reservation-id")},
	{"-s", "--security-groups", metric("security-groups", "meta-data/security-groups")},
	{"-d", "--user-data", metric("user-data", "user-data")},
	{"-g", "--tags", step{kind: tagsStep, label: "tags"}},

	{"-D", "--aws-domain", metric("aws-domain", "meta-data/services/domain")},
	{"-Z", "--availability-zone-id", metric("availability-zone-id", "meta-data/placement/availability-zone-id")},
	{"-R", "--region", metric("region", "meta-data/placement/region")},
	{"-P", "--partition", metric("partition", "meta-data/services/partition")},
}

// allSteps is what --all and a bare invocation print: 2.0.1's list, which
// is the first twenty flags.
var allSteps = func() []step {
	s := make([]step, 20)
	for i := range s {
		s[i] = flags[i].step
	}
	return s
}()

// Command is a parsed ec2-metadata command line.
type Command struct {
	// Quiet drops the "label: " prefixes (upstream's --quiet).
	Quiet bool
	// JSON prints one JSON object of label → value instead of text.
	JSON bool
	// Endpoint overrides the metadata endpoint (--endpoint URL); empty
	// means the client's default resolution.
	Endpoint string
	// ShowSecrets prints role credentials as the service sent them
	// (--show-secrets); by default their secret key and token are
	// replaced by imds.Redacted.
	ShowSecrets bool

	steps []step
}

// Parse reads an ec2-metadata command line (without the program name).
// It never fails: like the script, it acts on the arguments in order and a
// bad one becomes a step that prints the help and exits 1 after the output
// of the arguments before it. Processing stops at --all, --help, a bad
// argument or an empty argument (the script's `while [ "$1" != "" ]`).
// --quiet, --json, --show-secrets and --endpoint are global and may
// appear anywhere.
func Parse(args []string) *Command {
	c := &Command{}
	actions := 0
	stopped := false
	stop := func(s step) {
		c.steps = append(c.steps, s)
		stopped = true
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--quiet":
			c.Quiet = true
			continue
		case a == "--json":
			c.JSON = true
			continue
		case a == "--show-secrets":
			c.ShowSecrets = true
			continue
		case a == "--endpoint":
			if i+1 < len(args) {
				i++
				c.Endpoint = args[i]
			} else if !stopped {
				actions++
				stop(step{kind: usageStep, problem: "option --endpoint needs a URL"})
			}
			continue
		case strings.HasPrefix(a, "--endpoint="):
			c.Endpoint = strings.TrimPrefix(a, "--endpoint=")
			continue
		}
		if stopped {
			if a == "--path" {
				i++ // its value is not an option
			}
			continue
		}
		actions++
		switch {
		case a == "":
			stopped = true
		case a == "--help":
			stop(step{kind: helpStep})
		case a == "--all":
			c.steps = append(c.steps, allSteps...)
			stopped = true
		case a == "--path":
			if i+1 == len(args) {
				stop(step{kind: usageStep, problem: "option --path needs a metadata path"})
				continue
			}
			i++
			c.steps = append(c.steps, pathStep(args[i]))
		case strings.HasPrefix(a, "--path="):
			c.steps = append(c.steps, pathStep(strings.TrimPrefix(a, "--path=")))
		default:
			s, ok := lookupFlag(a)
			if !ok {
				stop(step{kind: usageStep, problem: "unknown option " + quoteArg(a)})
				continue
			}
			c.steps = append(c.steps, s)
		}
	}
	if actions == 0 {
		c.steps = append(c.steps, allSteps...)
	}
	return c
}

func lookupFlag(a string) (step, bool) {
	for _, f := range flags {
		if a == f.short || a == f.long {
			return f.step, true
		}
	}
	return step{}, false
}

func quoteArg(a string) string {
	if strings.ContainsAny(a, " \t\n\"'\\") || a == "" {
		return "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return a
}

// versionPrefix reports whether p names the root or starts with an API
// version, as upstream's print_path tests with the regular expression
// ^(/$|/?(1\.0|[0-9]{4}-[0-9]{2}-[0-9]{2}|latest)); it anchors only the
// start, so "latestfoo" counts. (Written out rather than compiled: query
// runs are short, and every process would pay for the compilation.)
func versionPrefix(p string) bool {
	if p == "/" {
		return true
	}
	p = strings.TrimPrefix(p, "/")
	if strings.HasPrefix(p, "1.0") || strings.HasPrefix(p, "latest") {
		return true
	}
	if len(p) < 10 || p[4] != '-' || p[7] != '-' {
		return false
	}
	for _, i := range []int{0, 1, 2, 3, 5, 6, 8, 9} {
		if p[i] < '0' || p[i] > '9' {
			return false
		}
	}
	return true
}

// categoryPrefix reports whether p starts below a version (upstream's
// ^/?(dynamic|meta-data)). user-data is added because
// "latest/meta-data/user-data" never exists.
func categoryPrefix(p string) bool {
	p = strings.TrimPrefix(p, "/")
	for _, c := range []string{"dynamic", "meta-data", "user-data"} {
		if strings.HasPrefix(p, c) {
			return true
		}
	}
	return false
}

// collapseSlashes replaces each run of "/" with one (sed 's/\/\+/\//g').
func collapseSlashes(p string) string {
	for strings.Contains(p, "//") {
		p = strings.ReplaceAll(p, "//", "/")
	}
	return p
}

// NormalizePath is upstream's --path rule: runs of "/" collapse to one,
// and a path that does not start with a version ("latest", "1.0",
// "YYYY-MM-DD") or "/" alone gets "latest/" in front when it starts with
// dynamic, meta-data or user-data, else "latest/meta-data/". The result is
// both the label and the path asked for (from the server root).
func NormalizePath(p string) string {
	p = collapseSlashes(p)
	if !versionPrefix(p) {
		if categoryPrefix(p) {
			p = "latest/" + p
		} else {
			p = "latest/meta-data/" + p
		}
	}
	return collapseSlashes(p)
}

// pathStep reads the normalised path from the server root with "." and
// ".." segments resolved, as curl resolves them in the script's URL.
func pathStep(arg string) step {
	p := NormalizePath(arg)
	return metric(p, removeDotSegments("/"+strings.TrimPrefix(p, "/")))
}

// removeDotSegments is RFC 3986's algorithm (section 5.2.4) on a path that
// starts with "/": unlike path.Clean it keeps a trailing "/" and empty
// segments, which IMDS listings need.
func removeDotSegments(p string) string {
	var out []string
	segs := strings.Split(p, "/")[1:]
	for i, s := range segs {
		last := i == len(segs)-1
		switch s {
		case ".":
			if last {
				out = append(out, "")
			}
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
			if last {
				out = append(out, "")
			}
		default:
			out = append(out, s)
		}
	}
	return "/" + strings.Join(out, "/")
}

// needsMetadata reports whether any step reads metadata.
func (c *Command) needsMetadata() bool {
	for _, s := range c.steps {
		if s.kind != helpStep && s.kind != usageStep {
			return true
		}
	}
	return false
}
