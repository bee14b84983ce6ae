package fault

import (
	"errors"
	"net"
	"syscall"
)

// Unreachable reports whether err says that a server could not be reached
// at all (no connection could be made: refused, no route, a name that does
// not resolve, a connect timeout), as opposed to a server that answered
// with an error.
func Unreachable(err error) bool {
	if err == nil {
		return false
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return true
	}
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH) {
		return true
	}
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}
