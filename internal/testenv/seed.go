package testenv

import (
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"
)

// SeedEnv names the environment variable that replays a test's random choices.
const SeedEnv = "RUNFERRY_TEST_SEED"

// Rand returns a random source for a test's random choices (kill moments, injected
// faults). Its seed is RUNFERRY_TEST_SEED when set (a decimal uint64), else drawn from the
// clock, and is logged with t.Logf together with the command line that replays it, so a
// failure seen once can be run again with the same choices. A malformed RUNFERRY_TEST_SEED
// fails the test. Every call logs its seed; with the variable set, all calls use that seed.
func Rand(t testing.TB) *rand.Rand {
	t.Helper()
	seed, err := Seed()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Logf("random seed %d (replay: %s=%d go test -run '^%s$')", seed, SeedEnv, seed, t.Name())
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// Seed returns RUNFERRY_TEST_SEED, or a seed from the clock when it is unset or empty.
func Seed() (uint64, error) {
	if v := os.Getenv(SeedEnv); v != "" {
		seed, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, &seedError{v}
		}
		return seed, nil
	}
	return uint64(time.Now().UnixNano()), nil
}

type seedError struct{ value string }

func (e *seedError) Error() string {
	return SeedEnv + "=" + strconv.Quote(e.value) + ": want a decimal number from 0 to 18446744073709551615"
}
