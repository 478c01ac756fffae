package demoserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"strings"
)

// maxBodyBytes bounds request bodies; every valid request is far smaller.
const maxBodyBytes = 1 << 20

// statusClientClosed is logged and counted when a client gives up while
// the latency knob is holding its request (nginx uses the same number).
const statusClientClosed = 499

type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

type errorBody struct {
	Error apiError `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	// The only likely failure is a client that went away; nothing to do then.
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // these are API responses, not HTML; keep "<" readable
	_ = enc.Encode(v)
}

// writeError sends the one error shape. Messages are fixed text or name a
// field; they never include a value the client sent, so a key pasted into
// the wrong place is not echoed back.
func writeError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, errorBody{Error: apiError{Code: code, Message: message}})
}

func badRequest(w http.ResponseWriter, err error) {
	writeError(w, http.StatusBadRequest, "invalid_request", err.Error())
}

// codeForStatus turns a status into a snake_case code for injected errors,
// e.g. 503 -> "service_unavailable".
func codeForStatus(status int) string {
	text := http.StatusText(status)
	if text == "" {
		return fmt.Sprintf("http_%d", status)
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			return r
		case r >= 'A' && r <= 'Z':
			return r + ('a' - 'A')
		}
		return '_'
	}, text)
}

// decodeBody reads one JSON object into dst. With allowEmpty an empty body
// leaves dst untouched. The returned error is meant for the client.
func decodeBody(w http.ResponseWriter, r *http.Request, dst any, allowEmpty, strict bool) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if strict {
		dec.DisallowUnknownFields()
	}
	err := dec.Decode(dst)
	if errors.Is(err, io.EOF) {
		if allowEmpty {
			return nil
		}
		return errors.New("request body must be a JSON object")
	}
	if err != nil {
		return describeDecodeError(err, dst)
	}
	if dec.Decode(&struct{}{}) != io.EOF {
		return errors.New("request body must contain a single JSON object")
	}
	return nil
}

// describeDecodeError rewrites encoding/json errors into messages that name
// the offending field without quoting the client's input.
func describeDecodeError(err error, dst any) error {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &typeErr):
		if typeErr.Field == "" {
			return errors.New("request body must be a JSON object")
		}
		// typeErr.Type is the innermost Go type, e.g. string for a bad
		// element of "scopes"; the declared field type reads better.
		want := typeErr.Type
		if t := fieldType(dst, typeErr.Field); t != nil {
			want = t
		}
		return fmt.Errorf("%s must be %s", typeErr.Field, jsonTypeName(want))
	case errors.As(err, &syntaxErr), errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("request body is not valid JSON")
	case errors.As(err, &tooBig):
		return fmt.Errorf("request body is larger than %d bytes", maxBodyBytes)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// DisallowUnknownFields has no typed error. Its text quotes the
		// unknown name, which could be anything (even a key), so list the
		// allowed names instead.
		return fmt.Errorf("unknown field; allowed fields: %s", strings.Join(fieldNames(dst), ", "))
	}
	return errors.New("request body could not be decoded")
}

// jsonFields returns the top-level fields of the struct *dst by JSON name.
func jsonFields(dst any) map[string]reflect.Type {
	t := reflect.TypeOf(dst)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	fields := map[string]reflect.Type{}
	if t == nil || t.Kind() != reflect.Struct {
		return fields
	}
	for i := range t.NumField() {
		if name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ","); name != "" && name != "-" {
			fields[name] = t.Field(i).Type
		}
	}
	return fields
}

// fieldType returns the declared type of the JSON field name of *dst, or nil.
func fieldType(dst any, name string) reflect.Type { return jsonFields(dst)[name] }

// fieldNames lists the JSON field names of *dst, sorted.
func fieldNames(dst any) []string { return slices.Sorted(maps.Keys(jsonFields(dst))) }

// jsonTypeName describes a Go type in JSON terms for error messages.
func jsonTypeName(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int64, reflect.Int32:
		return "an integer"
	case reflect.Float64, reflect.Float32:
		return "a number"
	case reflect.Slice:
		return "an array of " + strings.TrimPrefix(strings.TrimPrefix(jsonTypeName(t.Elem()), "a "), "an ") + "s"
	}
	return "a JSON " + t.Kind().String()
}

// statusWriter remembers the status sent, for the request log and stats.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the real writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) code() int {
	if w.status == 0 {
		return http.StatusOK // a handler that wrote nothing sent an implicit 200
	}
	return w.status
}
