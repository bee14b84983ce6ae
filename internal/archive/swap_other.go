//go:build !linux

package archive

// exchange is not supported here: see swap_linux.go.
func exchange(a, b string) error { return errNoExchange }
