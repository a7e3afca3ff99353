package ec2metadata

import (
	"bytes"
	"strings"
	"unicode/utf8"
)

// This file reproduces the few bash and coreutils behaviours that shape the
// output of amazon-ec2-utils' ec2-metadata script, so that flint's text
// output matches it byte for byte even for odd values. Each function names
// the shell construct it stands for.

// shellValue is what the script holds after `v=$(get_meta PATH)`: command
// substitution drops NUL bytes and strips trailing newlines, and get_meta's
// `echo -n "$out"` prints nothing for a value that echo takes as options
// ("-n", "-e", "-neE", ...).
func shellValue(raw []byte) string {
	if bytes.IndexByte(raw, 0) >= 0 {
		raw = bytes.ReplaceAll(raw, []byte{0}, nil)
	}
	s := strings.TrimRight(string(raw), "\n")
	if echoOption(s) {
		return ""
	}
	return s
}

// echoOption reports whether bash's builtin echo takes arg as an option
// rather than as text: a "-" followed only by the letters n, e and E.
func echoOption(arg string) bool {
	if len(arg) < 2 || arg[0] != '-' {
		return false
	}
	for i := 1; i < len(arg); i++ {
		switch arg[i] {
		case 'n', 'e', 'E':
		default:
			return false
		}
	}
	return true
}

// ifsFields splits s as an unquoted expansion is split with the default
// IFS: on runs of space, tab and newline, ignoring them at both ends.
// (strings.Fields would also split on \r, \v, \f and Unicode spaces.)
func ifsFields(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == '\t' || r == '\n' })
}

// echoWords is the output of `echo WORD` where WORD is unquoted: it is
// split into fields, option-like leading fields are consumed as options,
// and the rest are joined with single spaces and a newline. Escapes are not
// interpreted (bash's xpg_echo is off).
func echoWords(word string) string {
	args := ifsFields(word)
	newline := true
	for len(args) > 0 && echoOption(args[0]) {
		if strings.Contains(args[0], "n") {
			newline = false
		}
		args = args[1:]
	}
	s := strings.Join(args, " ")
	if newline {
		s += "\n"
	}
	return s
}

// cutField is `echo $word | cut -d = -f N` inside $(...): the Nth
// "="-separated field of the word, or the whole word when it holds no "="
// (cut prints lines without the delimiter unchanged), trailing newlines
// stripped.
func cutField(word string, n int) string {
	var out strings.Builder
	for _, line := range strings.SplitAfter(echoWords(word), "\n") {
		if line == "" {
			continue
		}
		text := strings.TrimSuffix(line, "\n")
		if strings.Contains(text, "=") {
			parts := strings.Split(text, "=")
			if n <= len(parts) {
				text = parts[n-1]
			} else {
				text = ""
			}
		}
		out.WriteString(text)
		out.WriteByte('\n')
	}
	return strings.TrimRight(out.String(), "\n")
}

// echoEscapes is the output of bash's `echo -e ARGS...` (without -n): the
// arguments joined by spaces with backslash escapes interpreted, then a
// newline, unless a \c escape cut the output short.
func echoEscapes(args ...string) string {
	var b []byte
	for i, a := range args {
		if i > 0 {
			b = append(b, ' ')
		}
		var stop bool
		b, stop = appendEscaped(b, a)
		if stop {
			return string(b)
		}
	}
	return string(append(b, '\n'))
}

// appendEscaped interprets the escapes bash's echo -e knows: \a \b \c \e \E
// \f \n \r \t \v \\, \0nnn (up to three octal digits after the 0), \xHH (one
// or two hex digits), \uHHHH and \UHHHHHHHH (written as UTF-8, as in a
// UTF-8 locale). Any other backslash is kept as is. stop reports a \c.
func appendEscaped(b []byte, s string) (_ []byte, stop bool) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 == len(s) {
			b = append(b, c)
			continue
		}
		i++
		switch e := s[i]; e {
		case 'a':
			b = append(b, '\a')
		case 'b':
			b = append(b, '\b')
		case 'c':
			return b, true
		case 'e', 'E':
			b = append(b, 0x1b)
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'v':
			b = append(b, '\v')
		case '\\':
			b = append(b, '\\')
		case '0':
			v, n := digits(s[i+1:], 3, 8)
			b = append(b, byte(v))
			i += n
		case 'x', 'u', 'U':
			width := 2
			switch e {
			case 'u':
				width = 4
			case 'U':
				width = 8
			}
			v, n := digits(s[i+1:], width, 16)
			if n == 0 {
				b = append(b, '\\', e)
				continue
			}
			if e == 'x' {
				b = append(b, byte(v))
			} else {
				b = utf8.AppendRune(b, rune(v))
			}
			i += n
		default:
			b = append(b, '\\', e)
		}
	}
	return b, false
}

// digits reads up to max digits of the given base from the start of s.
func digits(s string, max, base int) (value, n int) {
	for n < max && n < len(s) {
		d := digitValue(s[n])
		if d < 0 || d >= base {
			break
		}
		value = value*base + d
		n++
	}
	return value, n
}

func digitValue(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
