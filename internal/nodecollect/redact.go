package nodecollect

import (
	"strings"
)

// Redacted replaces a value the collector chose not to record.
const Redacted = "<redacted>"

// secretWords are the words that make an argument or variable name look
// like it carries a secret.
var secretWords = map[string]bool{
	"pass": true, "passwd": true, "password": true, "secret": true, "token": true,
	"key": true, "credential": true, "credentials": true, "auth": true, "apikey": true,
}

// secretName reports whether name, split into words at '-', '_' and '.',
// holds one of secretWords, case ignored: "--db-password", "AWS_SECRET_ACCESS_KEY"
// and "--apikey" do, "--keyboard" and "--monkey" do not.
func secretName(name string) bool {
	for w := range strings.FieldsFuncSeq(name, func(r rune) bool { return r == '-' || r == '_' || r == '.' }) {
		if secretWords[strings.ToLower(w)] {
			return true
		}
	}
	return false
}

// RedactArgs returns args with secret-looking values replaced by Redacted,
// and whether anything was replaced. The rule, applied to every argument
// after the program name:
//
//   - "--NAME=VALUE" or "-NAME=VALUE" whose NAME is secret: VALUE is replaced;
//   - "--NAME" or "-NAME" whose NAME is secret, followed by an argument not
//     starting with '-': that argument is replaced;
//   - "NAME=VALUE" (environment style, NAME made of letters, digits, '_',
//     '-', '.') whose NAME is secret: VALUE is replaced;
//   - in any argument, including the program name, the password of a URL's
//     userinfo ("scheme://user:PASS@host") is replaced.
//
// A name is secret when one of its words is pass, passwd, password, secret,
// token, key, credential(s), auth or apikey (see secretName). The rule errs
// towards redacting: "--token-ttl 5m" loses its "5m".
func RedactArgs(args []string) ([]string, bool) {
	out := make([]string, len(args))
	changed := false
	copy(out, args)
	for i := 1; i < len(out); i++ {
		a := out[i]
		if name, ok := strings.CutPrefix(a, "-"); ok {
			name = strings.TrimPrefix(name, "-")
			if n, _, hasValue := strings.Cut(name, "="); hasValue {
				if secretName(n) {
					out[i] = a[:strings.IndexByte(a, '=')+1] + Redacted
					changed = true
				}
				continue
			}
			if secretName(name) && i+1 < len(out) && !strings.HasPrefix(out[i+1], "-") {
				out[i+1] = Redacted
				changed = true
				i++
			}
			continue
		}
		if n, _, ok := strings.Cut(a, "="); ok && envName(n) && secretName(n) {
			out[i] = n + "=" + Redacted
			changed = true
		}
	}
	for i := range out {
		if r, ok := redactURLPassword(out[i]); ok {
			out[i] = r
			changed = true
		}
	}
	return out, changed
}

func envName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c == '_' || c == '-' || c == '.' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

// redactURLPassword replaces the password of every "scheme://user:PASS@"
// in s.
func redactURLPassword(s string) (string, bool) {
	changed := false
	var b strings.Builder
	rest := s
	for {
		i := strings.Index(rest, "://")
		if i < 0 {
			break
		}
		b.WriteString(rest[:i+3])
		rest = rest[i+3:]
		// The authority ends at the first '/', '?', '#' or whitespace;
		// userinfo is what comes before its last '@'.
		end := strings.IndexAny(rest, "/?# \t")
		if end < 0 {
			end = len(rest)
		}
		auth := rest[:end]
		at := strings.LastIndexByte(auth, '@')
		colon := strings.IndexByte(auth, ':')
		if at > 0 && colon >= 0 && colon < at && auth[colon+1:at] != Redacted {
			b.WriteString(auth[:colon+1])
			b.WriteString(Redacted)
			b.WriteString(auth[at:])
			rest = rest[end:]
			changed = true
			continue
		}
		b.WriteString(auth)
		rest = rest[end:]
	}
	b.WriteString(rest)
	if !changed {
		return s, false
	}
	return b.String(), true
}
