package wandbcloud

// ListedState is listedState, for the package's external tests.
func (s *Source) ListedState() (runs, order int) { return s.listedState() }
