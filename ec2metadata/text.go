package ec2metadata

import "strings"

const notAvailable = "not available\n"

// writeText renders results as the script prints them. Without quiet the
// output is that of amazon-ec2-utils 2.0.1; with quiet it follows the
// upstream script that introduced --quiet (no headers or "label: "
// prefixes; its tag lines keep their keys).
func writeText(b *strings.Builder, results []*result, quiet bool) {
	for _, r := range results {
		switch r.kind {
		case helpStep, usageStep:
			b.WriteString(helpText)
		case metricStep:
			if !quiet {
				b.WriteString(r.label + ": ")
			}
			if v := valueOf(r.v); v == "" {
				b.WriteString(notAvailable)
			} else {
				b.WriteString(v + "\n")
			}
		case blockDevicesStep, tagsStep:
			writeListing(b, r, quiet)
		case publicKeysStep:
			writePublicKeys(b, r, quiet)
		}
	}
}

// writeListing prints block-device-mapping and tags. 2.0.1 prints each
// child with `echo -e '\t' $i: "$value"`, so escapes in names and values
// are interpreted; upstream's quiet mode prints the value with a plain echo
// (and, for tags only, still the "\t name: " prefix).
func writeListing(b *strings.Builder, r *result, quiet bool) {
	if !quiet {
		b.WriteString(r.label + ": \n")
	}
	if !r.listed() {
		b.WriteString(notAvailable)
		return
	}
	for _, e := range r.entries {
		v := valueOf(e.v)
		switch {
		case !quiet:
			b.WriteString(echoEscapes(`\t`, e.name+":", v))
		case r.kind == tagsStep:
			prefix, _ := appendEscaped([]byte("\t "), e.name+": ")
			b.Write(prefix)
			b.WriteString(v + "\n")
		default:
			b.WriteString(v + "\n")
		}
	}
}

// writePublicKeys prints print_public-keys' lines: keyname, index, format,
// a marker line and the key for each key (only the key when quiet).
func writePublicKeys(b *strings.Builder, r *result, quiet bool) {
	if !quiet {
		b.WriteString("public-keys: \n")
	}
	if !r.listed() {
		b.WriteString(notAvailable)
		return
	}
	for _, k := range r.keys {
		if !quiet {
			b.WriteString(echoWords("keyname:" + k.name))
			b.WriteString(echoWords("index:" + k.index))
			b.WriteString(echoWords("format:" + valueOf(k.format)))
			b.WriteString("key:(begins from next line)\n")
		}
		b.WriteString(valueOf(k.key) + "\n")
	}
}

// valueOf is the shell's view of a fetch: empty when absent or failed.
func valueOf(f fetched) string {
	if !f.found() {
		return ""
	}
	return shellValue(f.raw)
}
