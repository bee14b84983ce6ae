package wandbfile

import "fmt"

// within wraps err with the name of the message it occurred in.
func within(name string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", name, err)
}
