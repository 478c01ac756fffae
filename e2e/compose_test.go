//go:build e2e

package e2e

// docker-compose.yml, Dockerfile and scripts/docker-entrypoint.sh, without a
// Docker engine: everything the files refer to must exist and agree
// (build contexts, Dockerfiles and targets, COPY sources, the Go packages
// and -X symbol built, the flags of the binaries, ports and addresses,
// the admin key, the plugin name, version and directory, the entry script
// and the plugin paths it writes), and the entry script itself, which does
// the whole set-up with the vault CLI, is run here against the real Vault
// binary, the suite's plugin build and a demo provider, the way the vault
// container runs it. The monitoring services (Prometheus with
// deploy/prometheus, Grafana with deploy/grafana and the dashboard) must
// point at each other and at the vault service, and `docker compose config`
// must accept the file.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// ---- docker-compose.yml ----

type dcCompose struct {
	Services map[string]*dcService `yaml:"services"`
}

type dcService struct {
	Build struct {
		Context    string            `yaml:"context"`
		Dockerfile string            `yaml:"dockerfile"`
		Target     string            `yaml:"target"`
		Args       map[string]string `yaml:"args"`
	} `yaml:"build"`
	Image       string            `yaml:"image"`
	Command     []string          `yaml:"command"`
	Entrypoint  []string          `yaml:"entrypoint"`
	Environment map[string]string `yaml:"environment"`
	Ports       []string          `yaml:"ports"`
	DependsOn   map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	Healthcheck *struct {
		Test     []string `yaml:"test"`
		Interval string   `yaml:"interval"`
		Timeout  string   `yaml:"timeout"`
		Retries  int      `yaml:"retries"`
	} `yaml:"healthcheck"`
	Init    bool     `yaml:"init"`
	CapAdd  []string `yaml:"cap_add"`
	Volumes []string `yaml:"volumes"`
}

var dcVarRe = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:?-([^}]*))?\}`)

// dcInterpolate applies compose's ${VAR:-default} with an empty environment
// (what `docker compose up` does on a machine that sets none), reporting
// variables without a default.
func dcInterpolate(t *testing.T, s string) string {
	t.Helper()
	return dcVarRe.ReplaceAllStringFunc(s, func(m string) string {
		sub := dcVarRe.FindStringSubmatch(m)
		if sub[2] == "" {
			t.Errorf("docker-compose.yml: ${%s} has no default", sub[1])
		}
		return sub[3]
	})
}

func dcLoadCompose(t *testing.T) *dcCompose {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var f dcCompose
	dec := yaml.NewDecoder(strings.NewReader(dcInterpolate(t, string(b))))
	dec.KnownFields(true) // a misspelled key is an error, not ignored
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return &f
}

// ---- Dockerfile ----

type dcStage struct {
	name, base string
	args, env  map[string]string
	copies     []dcCopy
	runs       []string
	entrypoint []string
	cmd        []string
	expose     []string
	user       string
}

type dcCopy struct {
	from string
	srcs []string
	dst  string
}

// dcParseDockerfile reads the instructions this repository's Dockerfile
// uses (continuation lines joined, comments dropped) and fails on others.
func dcParseDockerfile(t *testing.T, file string) []*dcStage {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	cur := ""
	for _, l := range strings.Split(string(b), "\n") {
		tl := strings.TrimSpace(l)
		if strings.HasPrefix(tl, "#") || (tl == "" && cur == "") {
			continue
		}
		if strings.HasSuffix(tl, "\\") {
			cur += strings.TrimSuffix(tl, "\\") + " "
			continue
		}
		lines = append(lines, cur+tl)
		cur = ""
	}
	var stages []*dcStage
	var st *dcStage
	for _, l := range lines {
		if l == "" {
			continue
		}
		instr, rest, _ := strings.Cut(l, " ")
		rest = strings.TrimSpace(rest)
		instr = strings.ToUpper(instr)
		if instr != "FROM" && st == nil {
			if instr == "ARG" {
				continue
			}
			t.Fatalf("Dockerfile: %s before FROM", instr)
		}
		switch instr {
		case "FROM":
			f := strings.Fields(rest)
			st = &dcStage{base: f[0], args: map[string]string{}, env: map[string]string{}}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				st.name = f[2]
			}
			stages = append(stages, st)
		case "ARG":
			k, v, _ := strings.Cut(rest, "=")
			st.args[k] = v
		case "ENV":
			for _, kv := range strings.Fields(rest) {
				k, v, _ := strings.Cut(kv, "=")
				st.env[k] = v
			}
		case "COPY":
			var c dcCopy
			var words []string
			for _, w := range strings.Fields(rest) {
				switch {
				case strings.HasPrefix(w, "--from="):
					c.from = strings.TrimPrefix(w, "--from=")
				case strings.HasPrefix(w, "--"):
				default:
					words = append(words, w)
				}
			}
			c.srcs, c.dst = words[:len(words)-1], words[len(words)-1]
			st.copies = append(st.copies, c)
		case "RUN":
			st.runs = append(st.runs, rest)
		case "ENTRYPOINT", "CMD":
			var v []string
			if err := json.Unmarshal([]byte(rest), &v); err != nil {
				t.Errorf("Dockerfile: %s %s is not the exec (JSON) form: %v", instr, rest, err)
			}
			if instr == "CMD" {
				st.cmd = v
			} else {
				st.entrypoint = v
			}
		case "EXPOSE":
			st.expose = append(st.expose, strings.Fields(rest)...)
		case "USER":
			st.user = rest
		case "WORKDIR":
		default:
			t.Errorf("Dockerfile: instruction %s is not checked by this test", instr)
		}
	}
	return stages
}

func dcStageNamed(stages []*dcStage, name string) *dcStage {
	for _, s := range stages {
		if s.name == name {
			return s
		}
	}
	return nil
}

// dcExpand replaces ${X} and $X with the stage's ARG/ENV defaults.
func dcExpand(st *dcStage, s string) string {
	for _, m := range []map[string]string{st.args, st.env} {
		for k, v := range m {
			s = strings.ReplaceAll(s, "${"+k+"}", v)
			s = strings.ReplaceAll(s, "$"+k, v)
		}
	}
	return s
}

// ---- go build commands in RUN ----

type dcGoBuild struct {
	out, pkg string
	ldflags  string
}

func dcGoBuilds(t *testing.T, st *dcStage) []dcGoBuild {
	t.Helper()
	var out []dcGoBuild
	for _, run := range st.runs {
		for _, part := range strings.Split(run, "&&") {
			words, err := tfShellWords(strings.TrimSpace(part))
			if err != nil {
				t.Fatalf("RUN %s: %v", run, err)
			}
			if len(words) < 2 || words[0] != "go" || words[1] != "build" {
				continue
			}
			var b dcGoBuild
			for i := 2; i < len(words); i++ {
				switch w := words[i]; {
				case w == "-o":
					i++
					b.out = words[i]
				case w == "-ldflags":
					i++
					b.ldflags = words[i]
				case strings.HasPrefix(w, "-"):
				default:
					b.pkg = w
				}
			}
			out = append(out, b)
		}
	}
	return out
}

// ---- the test of the files ----

func TestComposeFilesAgree(t *testing.T) {
	f := dcLoadCompose(t)
	demoSvc, vaultSvc := f.Services["demo-provider"], f.Services["vault"]
	if demoSvc == nil || vaultSvc == nil || f.Services["prometheus"] == nil || f.Services["grafana"] == nil || len(f.Services) != 4 {
		t.Fatalf("docker-compose.yml: want services demo-provider, vault, prometheus and grafana, have %v", sortedKeys(f.Services))
	}

	// Build contexts, Dockerfiles, targets.
	var stages []*dcStage
	var dockerfile string
	for _, name := range []string{"demo-provider", "vault"} {
		s := f.Services[name]
		if s.Image != "" {
			t.Errorf("service %s: image %q; it is built from this repository", name, s.Image)
		}
		ctx := filepath.Join(repoRoot, s.Build.Context)
		if fi, err := os.Stat(ctx); err != nil || !fi.IsDir() || filepath.Clean(ctx) != repoRoot {
			t.Errorf("service %s: build context %q is not the repository root", name, s.Build.Context)
		}
		df := filepath.Join(ctx, s.Build.Dockerfile)
		if _, err := os.Stat(df); err != nil {
			t.Fatalf("service %s: dockerfile %q: %v", name, s.Build.Dockerfile, err)
		}
		dockerfile = df
		stages = dcParseDockerfile(t, df)
		if dcStageNamed(stages, s.Build.Target) == nil {
			t.Errorf("service %s: build target %q is not a stage of %s", name, s.Build.Target, s.Build.Dockerfile)
		}
	}
	if len(stages) == 0 {
		t.Fatal("no Dockerfile stages")
	}
	build, demoSt, vaultSt := dcStageNamed(stages, "build"), dcStageNamed(stages, demoSvc.Build.Target), dcStageNamed(stages, vaultSvc.Build.Target)
	if build == nil || demoSt == nil || vaultSt == nil {
		t.Fatalf("Dockerfile stages %v; want build, %s and %s", stages, demoSvc.Build.Target, vaultSvc.Build.Target)
	}
	if stages[len(stages)-1] != vaultSt {
		t.Errorf("the last (default) stage of the Dockerfile is %q, want the vault image", stages[len(stages)-1].name)
	}

	// Base images: the pinned Vault and a Go at least as new as go.mod's.
	vaultMod, _ := os.ReadFile(filepath.Join(repoRoot, "scripts/vault/go.mod"))
	pinned := regexp.MustCompile(`(?m)^require github.com/hashicorp/vault v(\S+)$`).FindSubmatch(vaultMod)
	if pinned == nil {
		t.Fatal("scripts/vault/go.mod pins no Vault")
	}
	if want := "hashicorp/vault:" + string(pinned[1]); vaultSt.base != want {
		t.Errorf("vault image based on %s, want %s (the Vault of scripts/vault/go.mod and the e2e suite)", vaultSt.base, want)
	}
	goMod, _ := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
	goWant := regexp.MustCompile(`(?m)^go (\d+)\.(\d+)`).FindSubmatch(goMod)
	goHave := regexp.MustCompile(`^golang:(\d+)\.(\d+)`).FindStringSubmatch(build.base)
	if goWant == nil || goHave == nil {
		t.Fatalf("go.mod go directive %q, build image %q", goWant, build.base)
	}
	if dcVersionLess(goHave[1], goHave[2], string(goWant[1]), string(goWant[2])) {
		t.Errorf("build image %s is older than go.mod's go %s.%s", build.base, goWant[1], goWant[2])
	}

	// COPY sources from the context exist and are not excluded by .dockerignore.
	ignore := dcDockerignore(t)
	var copied []string // context paths copied into the build stage
	for _, st := range stages {
		for _, c := range st.copies {
			if c.from != "" {
				if dcStageNamed(stages, c.from) == nil {
					t.Errorf("COPY --from=%s: no such stage", c.from)
				}
				continue
			}
			for _, src := range c.srcs {
				matches, _ := filepath.Glob(filepath.Join(repoRoot, src))
				if len(matches) == 0 {
					t.Errorf("stage %s: COPY source %s does not exist", st.name, src)
				}
				if p := dcIgnoredBy(ignore, src); p != "" {
					t.Errorf("stage %s: COPY source %s is excluded by .dockerignore (%s)", st.name, src, p)
				}
				if st == build {
					copied = append(copied, path.Clean(src))
				}
			}
		}
	}

	// The go builds: packages exist, are commands, and everything they
	// import from this module was copied in; the version symbol exists.
	builds := dcGoBuilds(t, build)
	outputs := map[string]string{} // -o path → package
	for _, b := range builds {
		outputs[b.out] = b.pkg
		out, err := goList(b.pkg, "{{.Name}}")
		if err != nil || strings.TrimSpace(out) != "main" {
			t.Errorf("go build %s: not a command package (%v %s)", b.pkg, err, out)
			continue
		}
		deps, err := goList(b.pkg, "{{if not .Standard}}{{.ImportPath}}{{end}}", "-deps")
		if err != nil {
			t.Fatalf("go list -deps %s: %v", b.pkg, err)
		}
		for _, d := range strings.Fields(deps) {
			if !strings.HasPrefix(d, module+"/") {
				continue
			}
			rel := strings.TrimPrefix(d, module+"/")
			ok := false
			for _, c := range copied {
				if rel == c || strings.HasPrefix(rel, c+"/") {
					ok = true
				}
			}
			if !ok {
				t.Errorf("go build %s needs %s, which the build stage does not COPY", b.pkg, rel)
			}
		}
		if m := regexp.MustCompile(`-X (\S+)\.(\w+)=(\S+)`).FindStringSubmatch(b.ldflags); m != nil {
			if !strings.HasPrefix(m[1], module+"/") {
				t.Errorf("-X %s.%s: not a package of this module", m[1], m[2])
			} else if src, err := dcPackageSource(strings.TrimPrefix(m[1], module+"/")); err != nil || !regexp.MustCompile(`(?m)^var `+m[2]+` = `).MatchString(src) {
				t.Errorf("-X %s.%s: no such string variable (%v)", m[1], m[2], err)
			}
			if m[3] != "${VERSION}" {
				t.Errorf("-X sets %s, want ${VERSION}", m[3])
			}
		}
	}
	pluginPkg, demoPkg := "./cmd/"+pluginName, "./cmd/demo-provider"
	var pluginOut, demoOut string
	for out, pkg := range outputs {
		switch pkg {
		case pluginPkg:
			pluginOut = out
		case demoPkg:
			demoOut = out
		}
	}
	if pluginOut == "" || demoOut == "" {
		t.Fatalf("the build stage builds %v; want %s and %s", outputs, pluginPkg, demoPkg)
	}

	// One version: Makefile default = compose build arg = Dockerfile ARG
	// default, compiled in (-X) and registered (PLUGIN_VERSION).
	mk, _ := os.ReadFile(filepath.Join(repoRoot, "Makefile"))
	mkVersion := regexp.MustCompile(`(?m)^VERSION\s*\?=\s*(\S+)`).FindSubmatch(mk)
	if mkVersion == nil {
		t.Fatal("Makefile has no VERSION ?= default")
	}
	version := string(mkVersion[1])
	if got := vaultSvc.Build.Args["VERSION"]; got != version {
		t.Errorf("compose vault build arg VERSION %q, Makefile's %q", got, version)
	}
	for _, st := range []*dcStage{build, vaultSt} {
		if v, ok := st.args["VERSION"]; !ok || v != version {
			t.Errorf("stage %s: ARG VERSION default %q, want %q", st.name, v, version)
		}
	}
	if dcExpand(vaultSt, vaultSt.env["PLUGIN_VERSION"]) != version {
		t.Errorf("vault stage: ENV PLUGIN_VERSION=%s, want the build's VERSION", vaultSt.env["PLUGIN_VERSION"])
	}

	// The vault image: the plugin binary in PLUGIN_DIR under the plugin's
	// name, the entry script as the entry point.
	script := filepath.Join(repoRoot, "scripts/docker-entrypoint.sh")
	var pluginDst, scriptDst string
	for _, c := range vaultSt.copies {
		switch {
		case c.from == "build" && len(c.srcs) == 1 && c.srcs[0] == pluginOut:
			pluginDst = c.dst
		case c.from == "" && len(c.srcs) == 1 && c.srcs[0] == "scripts/docker-entrypoint.sh":
			scriptDst = c.dst
		}
	}
	if pluginDst == "" || path.Base(pluginDst) != pluginName || path.Dir(pluginDst) != vaultSt.env["PLUGIN_DIR"] {
		t.Errorf("vault stage: plugin copied to %q, want %s/%s (ENV PLUGIN_DIR)", pluginDst, vaultSt.env["PLUGIN_DIR"], pluginName)
	}
	if scriptDst == "" || len(vaultSt.entrypoint) != 1 || vaultSt.entrypoint[0] != scriptDst {
		t.Errorf("vault stage: ENTRYPOINT %v, entry script copied to %q", vaultSt.entrypoint, scriptDst)
	}
	if len(vaultSvc.Entrypoint) > 0 || len(vaultSvc.Command) > 0 {
		t.Errorf("compose overrides the vault image's entry point: %v %v", vaultSvc.Entrypoint, vaultSvc.Command)
	}
	if fi, err := os.Stat(script); err != nil || fi.Mode()&0o111 == 0 {
		t.Errorf("scripts/docker-entrypoint.sh missing or not executable: %v", err)
	}
	src, _ := os.ReadFile(script)
	if !strings.HasPrefix(string(src), "#!/bin/sh\n") {
		t.Errorf("scripts/docker-entrypoint.sh must be a /bin/sh script (the image is Alpine: no bash)")
	}
	if out, err := exec.Command("sh", "-n", script).CombinedOutput(); err != nil {
		t.Errorf("sh -n scripts/docker-entrypoint.sh: %v %s", err, out)
	}
	defaults := dcScriptDefaults(string(src))
	if defaults["PLUGIN_NAME"] != pluginName || defaults["MOUNT"] != "thirdparty" || defaults["PLUGIN_DIR"] != vaultSt.env["PLUGIN_DIR"] {
		t.Errorf("entry script defaults %v; want PLUGIN_NAME=%s MOUNT=thirdparty PLUGIN_DIR=%s", defaults, pluginName, vaultSt.env["PLUGIN_DIR"])
	}
	// Every variable compose sets is one the script reads, and every
	// variable the script requires is set by compose or the image.
	for k := range vaultSvc.Environment {
		if !strings.Contains(string(src), k) {
			t.Errorf("compose sets %s for the vault service; the entry script does not use it", k)
		}
	}
	for _, m := range regexp.MustCompile(`\$\{(\w+):\?`).FindAllStringSubmatch(string(src), -1) {
		if _, ok := vaultSvc.Environment[m[1]]; !ok && vaultSt.env[m[1]] == "" {
			t.Errorf("the entry script requires %s; neither compose nor the image sets it", m[1])
		}
	}

	// The demo provider image and its command line.
	if len(demoSt.entrypoint) != 1 {
		t.Fatalf("demo-provider stage ENTRYPOINT %v", demoSt.entrypoint)
	}
	found := false
	for _, c := range demoSt.copies {
		if c.from == "build" && len(c.srcs) == 1 && c.srcs[0] == demoOut && c.dst == demoSt.entrypoint[0] {
			found = true
		}
	}
	if !found {
		t.Errorf("demo-provider stage: ENTRYPOINT %v is not the copied %s", demoSt.entrypoint, demoOut)
	}
	demoArgs := demoSvc.Command
	if len(demoArgs) == 0 {
		demoArgs = demoSt.cmd
	}
	help, _ := exec.Command(demoBin, "-h").CombinedOutput()
	flags := map[string]string{}
	for i := 0; i < len(demoArgs); i++ {
		a := demoArgs[i]
		if !strings.HasPrefix(a, "-") {
			t.Errorf("demo-provider command: unexpected argument %q", a)
			continue
		}
		name := strings.TrimLeft(a, "-")
		if !regexp.MustCompile(`(?m)^\s+-` + regexp.QuoteMeta(name) + `\b`).Match(help) {
			t.Errorf("demo-provider has no flag -%s:\n%s", name, help)
		}
		if name != "quiet" && i+1 < len(demoArgs) {
			flags[name] = demoArgs[i+1]
			i++
		}
	}
	demoListen, adminKey := flags["listen"], flags["admin-key"]
	if demoListen == "" || adminKey == "" {
		t.Fatalf("demo-provider command %v: want -listen and -admin-key", demoArgs)
	}
	// The binary accepts that exact command line (listening on a free
	// loopback port instead).
	dcRunsWith(t, demoBin, demoArgs, "listen", "127.0.0.1:0")

	// Ports and addresses.
	_, demoPort, _ := net.SplitHostPort(demoListen)
	if h, _, _ := net.SplitHostPort(demoListen); h != "0.0.0.0" {
		t.Errorf("demo-provider listens on %s; in its container it must listen on 0.0.0.0", demoListen)
	}
	dcCheckPublished(t, "demo-provider", demoSvc.Ports, demoPort)
	dcCheckExpose(t, demoSt, demoPort)
	if demoSvc.Healthcheck == nil || !strings.Contains(strings.Join(demoSvc.Healthcheck.Test, " "), "127.0.0.1:"+demoPort+"/healthz") {
		t.Errorf("demo-provider healthcheck %v does not probe port %s /healthz", demoSvc.Healthcheck, demoPort)
	}
	du, err := url.Parse(vaultSvc.Environment["DEMO_URL"])
	if err != nil || du.Scheme != "http" || du.Hostname() != "demo-provider" || du.Port() != demoPort {
		t.Errorf("vault DEMO_URL %q, want http://demo-provider:%s (the service's name and port)", vaultSvc.Environment["DEMO_URL"], demoPort)
	}
	if vaultSvc.Environment["DEMO_ADMIN_KEY"] != adminKey {
		t.Errorf("vault DEMO_ADMIN_KEY %q differs from the demo provider's -admin-key %q", vaultSvc.Environment["DEMO_ADMIN_KEY"], adminKey)
	}
	if dep, ok := vaultSvc.DependsOn["demo-provider"]; !ok || dep.Condition != "service_healthy" || demoSvc.Healthcheck == nil {
		t.Errorf("vault must depend on demo-provider being healthy: %+v", vaultSvc.DependsOn)
	}
	listen := vaultSvc.Environment["VAULT_DEV_LISTEN_ADDRESS"]
	lh, vaultPort, err := net.SplitHostPort(listen)
	if err != nil || lh != "0.0.0.0" {
		t.Errorf("VAULT_DEV_LISTEN_ADDRESS %q, want 0.0.0.0:<port>", listen)
	}
	dcCheckPublished(t, "vault", vaultSvc.Ports, vaultPort)
	dcCheckExpose(t, vaultSt, vaultPort)
	if va := vaultSvc.Environment["VAULT_ADDR"]; va != "http://127.0.0.1:"+vaultPort {
		t.Errorf("vault VAULT_ADDR %q, want http://127.0.0.1:%s (the dev listener, from inside the container)", va, vaultPort)
	}
	if tok := vaultSvc.Environment["VAULT_TOKEN"]; tok == "" || tok != vaultSvc.Environment["VAULT_DEV_ROOT_TOKEN_ID"] {
		t.Errorf("VAULT_TOKEN %q, VAULT_DEV_ROOT_TOKEN_ID %q: want the same", tok, vaultSvc.Environment["VAULT_DEV_ROOT_TOKEN_ID"])
	}
	ready := vaultSvc.Environment["READY_FILE"]
	if vaultSvc.Healthcheck == nil || ready == "" || !strings.Contains(strings.Join(vaultSvc.Healthcheck.Test, " "), ready) {
		t.Errorf("vault healthcheck %v does not test READY_FILE %q", vaultSvc.Healthcheck, ready)
	}

	// The vault commands of the entry script use paths the plugin serves.
	doc := fetchOpenAPI(t)
	var patterns []*regexp.Regexp
	for p := range doc.Paths {
		if rest, ok := strings.CutPrefix(p, "/thirdparty/"); ok {
			re := regexp.QuoteMeta(rest)
			re = regexp.MustCompile(`\\\{\w+\\\}`).ReplaceAllString(re, `[A-Za-z0-9][A-Za-z0-9_.-]*`)
			patterns = append(patterns, regexp.MustCompile("^"+re+"$"))
		}
	}
	used := regexp.MustCompile(`"\$VAULT" (read|write|list|delete)(?: -[\w=-]+)* "\$MOUNT/([^"]+)"`).FindAllStringSubmatch(string(src), -1)
	if len(used) < 3 {
		t.Errorf("found %d vault commands on $MOUNT paths in the entry script, want the provider, role and creds", len(used))
	}
	for _, u := range used {
		ok := false
		for _, re := range patterns {
			ok = ok || re.MatchString(u[2])
		}
		if !ok {
			t.Errorf("entry script: vault %s thirdparty/%s is not a path of the plugin", u[1], u[2])
		}
	}
	t.Logf("checked %s, %d stages, %d go builds, %d plugin paths of the entry script", filepath.Base(dockerfile), len(stages), len(builds), len(used))

	dcCheckMonitoring(t, f, vaultPort, defaults["MOUNT"])
	dcComposeConfig(t)
}

// dcMounts maps each bind mount's container path to its source in the
// repository, checking that the source exists and the mount is read-only.
func dcMounts(t *testing.T, svc string, volumes []string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, v := range volumes {
		parts := strings.Split(v, ":")
		if len(parts) != 3 || parts[2] != "ro" || !strings.HasPrefix(parts[0], "./") {
			t.Errorf("%s: volume %q, want ./<file in this repository>:<path>:ro", svc, v)
			continue
		}
		if _, err := os.Stat(filepath.Join(repoRoot, parts[0])); err != nil {
			t.Errorf("%s: volume source %s: %v", svc, parts[0], err)
		}
		out[parts[1]] = path.Clean(parts[0])
	}
	return out
}

// dcPinnedImage checks that a service runs a pinned release of image.
func dcPinnedImage(t *testing.T, svc, image, want string) {
	t.Helper()
	if !regexp.MustCompile(`^` + regexp.QuoteMeta(want) + `:v?\d+\.\d+\.\d+$`).MatchString(image) {
		t.Errorf("%s: image %q, want %s:<pinned release>", svc, image, want)
	}
}

// dcCheckMonitoring: Prometheus runs deploy/prometheus/prometheus.yml with
// the rules beside it, scraping the vault service's mount with the token
// Vault's dev server has; Grafana gets that Prometheus as its data source and
// the committed dashboard.
func dcCheckMonitoring(t *testing.T, f *dcCompose, vaultPort, mount string) {
	prom, graf, vaultSvc := f.Services["prometheus"], f.Services["grafana"], f.Services["vault"]
	dcPinnedImage(t, "prometheus", prom.Image, "prom/prometheus")
	dcPinnedImage(t, "grafana", graf.Image, "grafana/grafana")

	// Prometheus: its flags, files and what the configuration scrapes.
	flags := map[string]string{}
	for _, a := range prom.Command {
		k, v, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		flags[k] = v
	}
	pm := dcMounts(t, "prometheus", prom.Volumes)
	cfgPath := flags["config.file"]
	if pm[cfgPath] != "deploy/prometheus/prometheus.yml" {
		t.Fatalf("prometheus --config.file=%s is not deploy/prometheus/prometheus.yml (mounts %v)", cfgPath, pm)
	}
	_, promPort, err := net.SplitHostPort(flags["web.listen-address"])
	if err != nil {
		t.Errorf("prometheus --web.listen-address=%q: %v", flags["web.listen-address"], err)
	}
	dcCheckPublished(t, "prometheus", prom.Ports, promPort)
	if dep, ok := prom.DependsOn["vault"]; !ok || dep.Condition != "service_healthy" {
		t.Errorf("prometheus must depend on vault being healthy: %+v", prom.DependsOn)
	}
	var cfg struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			MetricsPath   string `yaml:"metrics_path"`
			Authorization struct {
				CredentialsFile string `yaml:"credentials_file"`
			} `yaml:"authorization"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	b, _ := os.ReadFile(filepath.Join(repoRoot, "deploy/prometheus/prometheus.yml"))
	if err := yaml.Unmarshal(b, &cfg); err != nil || len(cfg.ScrapeConfigs) != 1 {
		t.Fatalf("deploy/prometheus/prometheus.yml: %v, %d scrape configs", err, len(cfg.ScrapeConfigs))
	}
	for _, rf := range cfg.RuleFiles {
		in := rf
		if !path.IsAbs(in) {
			in = path.Join(path.Dir(cfgPath), rf)
		}
		if pm[in] != "deploy/prometheus/rules.yml" {
			t.Errorf("prometheus.yml rule file %s is %s in the container, where compose mounts %q, not deploy/prometheus/rules.yml", rf, in, pm[in])
		}
	}
	sc := cfg.ScrapeConfigs[0]
	if want := "/v1/" + mount + "/metrics"; sc.MetricsPath != want {
		t.Errorf("prometheus.yml metrics_path %q, want %s (the mount the vault service enables)", sc.MetricsPath, want)
	}
	if len(sc.StaticConfigs) != 1 || fmt.Sprint(sc.StaticConfigs[0].Targets) != "[vault:"+vaultPort+"]" {
		t.Errorf("prometheus.yml targets %+v, want [vault:%s] (the vault service)", sc.StaticConfigs, vaultPort)
	}
	tokenSrc := pm[sc.Authorization.CredentialsFile]
	if tokenSrc == "" {
		t.Errorf("prometheus.yml credentials_file %q is not mounted", sc.Authorization.CredentialsFile)
	} else if tok, _ := os.ReadFile(filepath.Join(repoRoot, tokenSrc)); string(tok) != vaultSvc.Environment["VAULT_DEV_ROOT_TOKEN_ID"] {
		t.Errorf("%s holds %q, the vault service's VAULT_DEV_ROOT_TOKEN_ID is %q", tokenSrc, tok, vaultSvc.Environment["VAULT_DEV_ROOT_TOKEN_ID"])
	}
	rules, _ := os.ReadFile(filepath.Join(repoRoot, "deploy/prometheus/rules.yml"))
	if !strings.Contains(string(rules), `up{job="`+sc.JobName+`"}`) {
		t.Errorf("rules.yml does not watch up{job=%q}, the scrape job", sc.JobName)
	}

	// Grafana: the provisioning directory, the data source and the dashboard.
	gm := dcMounts(t, "grafana", graf.Volumes)
	if gm["/etc/grafana/provisioning"] != "deploy/grafana/provisioning" {
		t.Errorf("grafana mounts %v; want deploy/grafana/provisioning at /etc/grafana/provisioning", gm)
	}
	dashIn := ""
	for in, src := range gm {
		if src == "docs/grafana/thirdparty.json" {
			dashIn = in
		}
	}
	if dashIn == "" {
		t.Fatalf("grafana does not mount docs/grafana/thirdparty.json: %v", gm)
	}
	if graf.Environment["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"] != dashIn {
		t.Errorf("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH %q, want %s", graf.Environment["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"], dashIn)
	}
	dcCheckPublished(t, "grafana", graf.Ports, "3000")
	var ds struct {
		Datasources []struct {
			Type      string `yaml:"type"`
			URL       string `yaml:"url"`
			IsDefault bool   `yaml:"isDefault"`
		} `yaml:"datasources"`
	}
	b, _ = os.ReadFile(filepath.Join(repoRoot, "deploy/grafana/provisioning/datasources/prometheus.yml"))
	if err := yaml.Unmarshal(b, &ds); err != nil || len(ds.Datasources) != 1 {
		t.Fatalf("grafana data sources: %v %+v", err, ds)
	}
	if d := ds.Datasources[0]; d.Type != "prometheus" || !d.IsDefault || d.URL != "http://prometheus:"+promPort {
		t.Errorf("grafana data source %+v, want the default, of type prometheus, at http://prometheus:%s", d, promPort)
	}
	var dp struct {
		Providers []struct {
			Type    string `yaml:"type"`
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	b, _ = os.ReadFile(filepath.Join(repoRoot, "deploy/grafana/provisioning/dashboards/thirdparty.yml"))
	if err := yaml.Unmarshal(b, &dp); err != nil || len(dp.Providers) != 1 || dp.Providers[0].Type != "file" || dp.Providers[0].Options.Path != path.Dir(dashIn) {
		t.Errorf("grafana dashboard provider %+v (%v), want type file at %s", dp, err, path.Dir(dashIn))
	}
}

// dcComposeConfig runs `docker compose config` (the client needs no
// engine for it) or, without the compose plugin, Debian's docker-compose,
// and skips with a message when neither is installed.
func dcComposeConfig(t *testing.T) {
	t.Helper()
	var cmd *exec.Cmd
	if exec.Command("docker", "compose", "version").Run() == nil {
		cmd = exec.Command("docker", "compose", "config", "--quiet")
	} else if p, err := exec.LookPath("docker-compose"); err == nil {
		cmd = exec.Command(p, "config", "--quiet")
	} else {
		t.Log("SKIPPED docker compose config: neither the docker compose plugin nor docker-compose is installed (.ci/run installs Debian's docker-compose)")
		return
	}
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "COMPOSE_PROJECT_NAME=thirdparty-e2e")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out)
	} else {
		t.Logf("%s: the compose file is valid", strings.Join(cmd.Args, " "))
	}
}

func dcVersionLess(aMaj, aMin, bMaj, bMin string) bool {
	a1, _ := strconv.Atoi(aMaj)
	a2, _ := strconv.Atoi(aMin)
	b1, _ := strconv.Atoi(bMaj)
	b2, _ := strconv.Atoi(bMin)
	return a1 < b1 || (a1 == b1 && a2 < b2)
}

func dcDockerignore(t *testing.T) []string {
	b, err := os.ReadFile(filepath.Join(repoRoot, ".dockerignore"))
	if err != nil {
		return nil
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, strings.Trim(l, "/"))
		}
	}
	return out
}

// dcIgnoredBy returns the .dockerignore pattern that excludes src, if any
// (plain paths and globs of one segment, which is what the file uses).
func dcIgnoredBy(patterns []string, src string) string {
	src = path.Clean(src)
	for _, p := range patterns {
		if strings.HasPrefix(p, "!") {
			continue
		}
		for s := src; s != "." && s != "/"; s = path.Dir(s) {
			if ok, _ := path.Match(p, s); ok {
				return p
			}
		}
	}
	return ""
}

func goList(pkg, format string, extra ...string) (string, error) {
	args := append([]string{"list"}, extra...)
	args = append(args, "-f", format, pkg)
	cmd := exec.Command("go", args...)
	cmd.Dir = repoRoot
	out, err := cmd.Output()
	return string(out), err
}

func dcPackageSource(rel string) (string, error) {
	files, err := filepath.Glob(filepath.Join(repoRoot, rel, "*.go"))
	if err != nil || len(files) == 0 {
		return "", fmt.Errorf("no Go files in %s", rel)
	}
	var all strings.Builder
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		all.Write(b)
	}
	return all.String(), nil
}

var dcDefaultRe = regexp.MustCompile(`(?m)^(\w+)=\$\{(\w+):-([^}]*)\}$`)

// dcScriptDefaults returns NAME → default of the script's NAME=${NAME:-default} lines.
func dcScriptDefaults(src string) map[string]string {
	out := map[string]string{}
	for _, m := range dcDefaultRe.FindAllStringSubmatch(src, -1) {
		if m[1] == m[2] {
			out[m[1]] = m[3]
		}
	}
	return out
}

func dcCheckPublished(t *testing.T, svc string, ports []string, container string) {
	t.Helper()
	if len(ports) != 1 {
		t.Errorf("%s publishes %v; want one port", svc, ports)
		return
	}
	parts := strings.Split(ports[0], ":")
	if len(parts) != 3 || parts[0] != "127.0.0.1" || parts[2] != container {
		t.Errorf("%s publishes %q; want 127.0.0.1:<host port>:%s (loopback only, the port it listens on)", svc, ports[0], container)
	}
}

func dcCheckExpose(t *testing.T, st *dcStage, port string) {
	t.Helper()
	for _, e := range st.expose {
		if strings.TrimSuffix(e, "/tcp") == port {
			return
		}
	}
	t.Errorf("stage %s exposes %v, not the port %s it listens on", st.name, st.expose, port)
}

// dcRunsWith starts bin with args (the value of -flag replaced) and waits
// for the demo provider's listening line.
func dcRunsWith(t *testing.T, bin string, args []string, flag, value string) {
	t.Helper()
	a := append([]string(nil), args...)
	for i := range a {
		if a[i] == "-"+flag && i+1 < len(a) {
			a[i+1] = value
		}
	}
	p, err := startProcess(uniq("compose-demo-args"), bin, a...)
	if err != nil {
		t.Fatal(err)
	}
	defer p.stop(syscall.SIGTERM)
	if _, err := p.waitForLine("listening on ", 20*time.Second); err != nil {
		t.Errorf("demo-provider with the compose command line: %v", err)
	}
}

// ---- the entry script, run ----

// TestComposeEntrypointScript runs scripts/docker-entrypoint.sh with dash
// (a strict POSIX sh, like the image's busybox sh) against the real Vault
// binary, the suite's plugin directory and a fresh demo provider, and then
// uses what it set up like a compose user would.
func TestComposeEntrypointScript(t *testing.T) {
	sh := "sh"
	if p, err := exec.LookPath("dash"); err == nil {
		sh = p
	}
	demo, err := startDemo(uniq("compose"))
	if err != nil {
		t.Fatal(err)
	}
	issued.add(demo.AdminKey)
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	ready := filepath.Join(tmp, "ready")
	scriptTmp := filepath.Join(tmp, "tmp")
	if err := os.Mkdir(scriptTmp, 0o755); err != nil {
		t.Fatal(err)
	}
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TMPDIR=" + scriptTmp,
		"VAULT=" + vaultBin,
		"PLUGIN_DIR=" + pluginDir,
		"PLUGIN_VERSION=" + pluginVersion,
		fmt.Sprintf("VAULT_DEV_LISTEN_ADDRESS=127.0.0.1:%d", port),
		"VAULT_DEV_ROOT_TOKEN_ID=" + rootToken,
		"DEMO_URL=" + demo.URL,
		"DEMO_ADMIN_KEY=" + demo.AdminKey,
		"READY_FILE=" + ready,
		"VAULT_LOG_LEVEL=debug",
	}
	p, err := dcStartWithEnv("vault-compose-entrypoint", env, sh, filepath.Join(repoRoot, "scripts/docker-entrypoint.sh"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.stop(syscall.SIGKILL) })
	if _, err := p.waitForLine("thirdparty: ready", 120*time.Second); err != nil {
		t.Fatalf("entry script: %v\n%s", err, tail(p.log(), 40))
	}
	if _, err := os.Stat(ready); err != nil {
		t.Errorf("READY_FILE not created: %v", err)
	}
	if strings.Contains(p.log(), demo.AdminKey) {
		t.Errorf("the entry script's output shows the demo admin key")
	}

	v := &vaultServer{process: p, addr: fmt.Sprintf("http://127.0.0.1:%d", port)}
	if v.client, err = newClient(v.addr); err != nil {
		t.Fatal(err)
	}
	c := v.client
	// What it registered and mounted.
	s, err := c.Logical().Read("sys/mounts/thirdparty")
	if err != nil || s == nil {
		t.Fatalf("sys/mounts/thirdparty: %v", err)
	}
	if s.Data["type"] != pluginName || s.Data["plugin_version"] != pluginVersion || s.Data["running_plugin_version"] != pluginVersion || s.Data["running_sha256"] != pluginSHA {
		t.Errorf("thirdparty/ mount: %v", s.Data)
	}
	prov := read(t, c, "thirdparty/providers/demo")
	if prov == nil || prov.Data["type"] != "demo" || prov.Data["base_url"] != demo.URL {
		t.Errorf("providers/demo: %v", prov)
	}
	// The smoke test's key was revoked again; the admin key is the only live key.
	keys := demo.keys(t, "kind=key")
	if len(keys) != 1 || keys[0].State != "revoked" {
		t.Errorf("demo keys after the entry script's smoke test: %+v; want one, revoked", keys)
	}
	// The README command works.
	cmd := exec.Command(vaultBin, "read", "-format=json", "thirdparty/creds/demo-dynamic")
	cmd.Env = append(os.Environ(), "VAULT_ADDR="+v.addr, "VAULT_TOKEN="+rootToken)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("vault read thirdparty/creds/demo-dynamic: %v", err)
	}
	var creds struct {
		LeaseID string `json:"lease_id"`
		Data    struct {
			APIKey string `json:"api_key"`
			KeyID  string `json:"key_id"`
		} `json:"data"`
	}
	if err := json.Unmarshal(out, &creds); err != nil || creds.LeaseID == "" || creds.Data.APIKey == "" {
		t.Fatalf("creds: %v %+v", err, creds.LeaseID)
	}
	issued.add(creds.Data.APIKey)
	if code := demo.whoami(t, creds.Data.APIKey); code != 200 {
		t.Errorf("the issued key does not work: whoami %d", code)
	}

	// SIGTERM to the script (what docker stop sends through init) stops
	// Vault and removes the script's files.
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("the entry script did not exit on SIGTERM:\n%s", tail(p.log(), 20))
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err != nil {
			break
		}
		conn.Close()
		if time.Now().After(deadline) {
			t.Fatal("Vault still listens after the entry script exited")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := os.Stat(ready); err == nil {
		t.Errorf("READY_FILE left behind")
	}
	if left, _ := os.ReadDir(scriptTmp); len(left) > 0 {
		t.Errorf("the entry script left %d file(s) in TMPDIR", len(left))
	}
	sc := bufio.NewScanner(strings.NewReader(p.log()))
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "thirdparty: ") {
			t.Log(sc.Text())
		}
	}
}

// dcStartWithEnv is startProcess with an explicit environment.
func dcStartWithEnv(name string, env []string, bin string, args ...string) (*process, error) {
	logPath := filepath.Join(workDir, name+".log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	p := &process{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() { cmd.Wait(); logf.Close(); close(p.done) }()
	return p, nil
}
