package archive

// SetMoveHook sets moveHook for the external tests (TestGlobSeesOneVersion);
// nil removes it.
func SetMoveHook(f func(step string)) { moveHook = f }
