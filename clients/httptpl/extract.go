package httptpl

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"
)

// Extraction reads values from response bodies by gjson path. Errors name
// the path, never the value (it may be a secret).

func validJSON(body []byte) bool { return json.Valid(body) }

// lookup runs a gjson query; a panic inside gjson on a hostile body or path
// becomes an error rather than taking the plugin down.
func lookup(body []byte, path string) (r gjson.Result, err error) {
	defer func() {
		if recover() != nil {
			r, err = gjson.Result{}, fmt.Errorf("JSON path %q cannot be evaluated", path)
		}
	}()
	if !validJSON(body) {
		return gjson.Result{}, errors.New("response is not JSON")
	}
	return gjson.GetBytes(body, path), nil
}

// extractString reads an id or a secret. An id may be a JSON string or
// number; a secret must be a non-empty string.
func extractString(body []byte, path string, secret bool) (string, error) {
	path = strings.TrimSpace(path)
	if path == "" {
		return "", errors.New("no JSON path configured")
	}
	r, err := lookup(body, path)
	if err != nil {
		return "", err
	}
	switch {
	case !r.Exists():
		return "", fmt.Errorf("no value at %q", path)
	case r.Type == gjson.String && r.Str != "":
		return r.Str, nil
	case secret:
		return "", fmt.Errorf("no non-empty string at %q", path)
	case r.Type == gjson.Number:
		return r.String(), nil
	}
	return "", fmt.Errorf("the value at %q is not a non-empty string or a number", path)
}

// extractTime reads an expiry: RFC 3339 text, or epoch seconds as a number
// or numeric text. Absent, null, "" or a non-positive number mean none.
func extractTime(body []byte, path string) (time.Time, error) {
	r, err := lookup(body, strings.TrimSpace(path))
	if err != nil {
		return time.Time{}, err
	}
	bad := fmt.Errorf("the value at %q is neither RFC 3339 time nor epoch seconds", path)
	var secs float64
	switch r.Type {
	case gjson.Null:
		return time.Time{}, nil
	case gjson.Number:
		secs = r.Num
	case gjson.String:
		s := strings.TrimSpace(r.Str)
		if s == "" {
			return time.Time{}, nil
		}
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return t.UTC(), nil
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return time.Time{}, bad
		}
		secs = f
	default:
		return time.Time{}, bad
	}
	// Beyond year 9999 is not an expiry anyone means.
	if math.IsNaN(secs) || secs > 253402300799 {
		return time.Time{}, bad
	}
	if secs <= 0 {
		return time.Time{}, nil
	}
	whole, frac := math.Modf(secs)
	return time.Unix(int64(whole), int64(frac*1e9)).UTC(), nil
}

// extractItems reads the array of a list response.
func extractItems(body []byte, path string) ([][]byte, error) {
	path = strings.TrimSpace(path)
	if path == "" {
		return nil, errors.New("no JSON path configured")
	}
	r, err := lookup(body, path)
	if err != nil {
		return nil, err
	}
	// A gjson literal (a path starting with !) can yield text that only
	// starts like an array; it must not read as an empty list.
	if !r.IsArray() || !validJSON([]byte(r.Raw)) {
		return nil, fmt.Errorf("no array at %q", path)
	}
	var items [][]byte
	bad := false
	r.ForEach(func(_, v gjson.Result) bool {
		// gjson literals (paths starting with !) can yield text that is not
		// JSON; such an item has no name or id to read.
		if bad = !validJSON([]byte(v.Raw)); bad {
			return false
		}
		items = append(items, []byte(v.Raw))
		return true
	})
	if bad {
		return nil, fmt.Errorf("the array at %q holds an item that is not JSON", path)
	}
	return items, nil
}

// errorPaths are where REST APIs commonly put their error text.
var errorPaths = []string{
	"error.message", "error_description", "message", "error", "errors.0.message",
	"errors.0.detail", "errors.0", "detail", "title",
}

// errorMessage is the provider's own error text from a JSON error body, for
// StatusError (which redacts secrets from it).
func errorMessage(body []byte) string {
	for _, path := range errorPaths {
		r, err := lookup(body, path)
		if err != nil {
			return ""
		}
		if r.Type == gjson.String && strings.TrimSpace(r.Str) != "" {
			return r.Str
		}
	}
	return ""
}
