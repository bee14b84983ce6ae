package schema

import (
	"slices"
	"testing"
)

// SplitDamage: each inherited entry accounts for one equal entry of
// Damage, in Damage's order; an inherited entry not in Damage is ignored.
func TestSplitDamage(t *testing.T) {
	r := Run{Damage: []string{"a", "x", "a", "b"}, InheritedDamage: []string{"a", "b", "gone"}}
	fresh, inherited := r.SplitDamage()
	if !slices.Equal(fresh, []string{"x", "a"}) || !slices.Equal(inherited, []string{"a", "b"}) {
		t.Errorf("SplitDamage = %q, %q; want [x a], [a b]", fresh, inherited)
	}
	r = Run{Damage: []string{"a"}}
	if fresh, inherited := r.SplitDamage(); !slices.Equal(fresh, []string{"a"}) || inherited != nil {
		t.Errorf("SplitDamage without inherited notes = %q, %q", fresh, inherited)
	}
}
