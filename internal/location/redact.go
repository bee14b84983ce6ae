package location

import (
	"net/url"
	"regexp"
	"strings"
)

// secretKey matches query options whose values are secret.
var secretKey = regexp.MustCompile(`(?i)(token|secret|password|passwd|pwd|key|auth|credential|signature|sig)`)

// userinfo matches "scheme://user:password@" in text that is not a valid URL.
var userinfo = regexp.MustCompile(`(//[^/@:\s]*):([^/@\s]*)@`)

// Redacted is what a secret value is replaced by.
const Redacted = "***"

// Redact returns s with every secret hidden: the password of a URL's user
// info and the value of every query option whose name suggests a secret
// (token, key, password, ...). It is safe on strings that are not URLs.
func Redact(s string) string {
	base, query, hasQuery := strings.Cut(s, "?")
	base = userinfo.ReplaceAllString(base, "${1}:"+Redacted+"@")
	if !hasQuery {
		return base
	}
	parts := strings.Split(query, "&")
	for i, p := range parts {
		k, _, hasValue := strings.Cut(p, "=")
		name, err := url.QueryUnescape(k)
		if err != nil {
			name = k
		}
		if hasValue && secretKey.MatchString(name) {
			parts[i] = k + "=" + Redacted
		}
	}
	return base + "?" + strings.Join(parts, "&")
}

// RedactValues replaces every occurrence of each secret in s with Redacted.
// Adapters use it on error texts from servers, which may echo a token.
func RedactValues(s string, secrets ...string) string {
	for _, v := range secrets {
		if len(v) >= 4 {
			s = strings.ReplaceAll(s, v, Redacted)
		}
	}
	return s
}
