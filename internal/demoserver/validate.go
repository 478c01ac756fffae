package demoserver

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

const maxNameChars = 200

// checkName validates a key name; the error names the field for the client.
func checkName(name string, required bool) error {
	n := utf8.RuneCountInString(name)
	switch {
	case n == 0 && required:
		return errors.New("name is required")
	case n > maxNameChars:
		return fmt.Errorf("name must be at most %d characters", maxNameChars)
	}
	return nil
}

func checkScopes(scopes []string) error {
	for i, scope := range scopes {
		if scope == "" {
			return fmt.Errorf("scopes[%d] must not be empty", i)
		}
	}
	return nil
}
