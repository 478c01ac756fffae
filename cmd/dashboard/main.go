// Command dashboard writes the Grafana dashboard of the thirdparty secrets
// engine, defined as code in dashboard.go with the Grafana Foundation SDK,
// to docs/grafana/thirdparty.json (`make dashboard`). The JSON is committed;
// a test fails when it differs from what this program writes.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
)

func main() {
	out := flag.String("o", "docs/grafana/thirdparty.json", "`file` to write the dashboard JSON to (- for standard output)")
	flag.Parse()
	b, err := render()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if *out == "-" {
		_, err = os.Stdout.Write(b)
	} else {
		err = os.WriteFile(*out, b, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// render returns the dashboard as indented JSON with a final newline.
func render() ([]byte, error) {
	d, err := build()
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep PromQL's <, > and & readable
	enc.SetIndent("", "  ")
	if err := enc.Encode(d); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
