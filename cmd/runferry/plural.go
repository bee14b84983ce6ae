package main

import (
	"strconv"
	"strings"
)

// counted renders n and the noun, in the singular for 1 and in the plural
// (the noun with an s) otherwise: "1 run", "0 runs", "2 runs". The
// plural of a noun that does not take an s is given as a third argument
// ("1 match", "2 matches"). Every count runferry prints before a noun goes
// through it (TestOutputGrammar).
func counted[T ~int | ~int64](n T, noun string, plural ...string) string {
	s := strconv.FormatInt(int64(n), 10) + " "
	switch {
	case n == 1:
		return s + noun
	case len(plural) > 0:
		return s + plural[0]
	}
	return s + noun + "s"
}

// nounFor is counted's noun alone ("point" for 1, "points" otherwise), for
// a table that aligns the numbers apart from their nouns.
func nounFor[T ~int | ~int64](n T, noun string, plural ...string) string {
	_, s, _ := strings.Cut(counted(n, noun, plural...), " ")
	return s
}
