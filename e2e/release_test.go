//go:build e2e

package e2e

// Versions as operators see them: the version the plugin is registered
// with, the version the mount is pinned to and the version the running
// plugin reports (internal/version.Version, compiled in with -ldflags) are
// one and the same, through the real vault CLI; and `make release` builds
// binaries that report the release version when Vault runs them.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"
)

// vaultCLI runs the vault CLI against v as root and returns its stdout.
func vaultCLI(t testing.TB, v *vaultServer, args ...string) string {
	t.Helper()
	cmd := exec.Command(vaultBin, args...)
	cmd.Env = append(os.Environ(), "VAULT_ADDR="+v.addr, "VAULT_TOKEN="+rootToken, "VAULT_FORMAT=", "VAULT_NAMESPACE=")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("vault %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out)
}

func TestReleaseVersionsAgree(t *testing.T) {
	// vault plugin info -version=<v> secret <name>
	var info struct {
		Name, Command, Version, SHA256 string
		Builtin                        bool
	}
	out := vaultCLI(t, sharedVlt, "plugin", "info", "-format=json", "-version="+pluginVersion, "secret", pluginName)
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatalf("plugin info: %v\n%s", err, out)
	}
	if info.Name != pluginName || info.Version != pluginVersion || info.SHA256 != pluginSHA || info.Command != pluginName || info.Builtin {
		t.Errorf("plugin info: %+v; want version %s, sha256 %s, command %s", info, pluginVersion, pluginSHA, pluginName)
	}
	table := vaultCLI(t, sharedVlt, "plugin", "info", "-version="+pluginVersion, "secret", pluginName)
	if !regexpLine(table, `^version\s+`+pluginVersion+`$`) {
		t.Errorf("plugin info (table) has no line \"version %s\":\n%s", pluginVersion, table)
	}

	// vault secrets list -detailed
	var mounts map[string]struct {
		Type                 string `json:"type"`
		PluginVersion        string `json:"plugin_version"`
		RunningPluginVersion string `json:"running_plugin_version"`
		RunningSha256        string `json:"running_sha256"`
	}
	out = vaultCLI(t, sharedVlt, "secrets", "list", "-detailed", "-format=json")
	if err := json.Unmarshal([]byte(out), &mounts); err != nil {
		t.Fatalf("secrets list: %v\n%s", err, out)
	}
	m, ok := mounts["thirdparty/"]
	if !ok {
		t.Fatalf("secrets list has no thirdparty/:\n%s", out)
	}
	if m.Type != pluginName || m.PluginVersion != pluginVersion || m.RunningPluginVersion != pluginVersion || m.RunningSha256 != pluginSHA {
		t.Errorf("secrets list thirdparty/: %+v; want type %s, version and running version %s, running sha256 %s",
			m, pluginName, pluginVersion, pluginSHA)
	}
	table = vaultCLI(t, sharedVlt, "secrets", "list", "-detailed")
	row := ""
	for _, l := range strings.Split(table, "\n") {
		if strings.HasPrefix(l, "thirdparty/ ") {
			row = l
		}
	}
	if strings.Count(row, " "+pluginVersion+" ") != 2 {
		t.Errorf("secrets list -detailed: the thirdparty/ row should show %s as Version and Running Version:\n%s", pluginVersion, row)
	}

	// sys/mounts: the running version is what the plugin reports
	// (backend.RunningVersion = the -X value the suite built it with).
	s, err := sharedVlt.client.Logical().Read("sys/mounts/thirdparty")
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Data["running_plugin_version"]; got != pluginVersion || s.Data["plugin_version"] != pluginVersion {
		t.Errorf("sys/mounts/thirdparty: plugin_version %v, running_plugin_version %v; want %s (the version compiled in)",
			s.Data["plugin_version"], got, pluginVersion)
	}
}

func regexpLine(text, re string) bool {
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		if ok, _ := regexp.MatchString(re, strings.TrimRight(sc.Text(), " ")); ok {
			return true
		}
	}
	return false
}

// TestReleaseBuild runs `make release` for this machine's platform into a
// temporary dist, checks the binaries and SHA256SUMS, then registers the
// plugin binary as a second version of the plugin (its release file name as
// the command) and checks that Vault runs it at that version: on a new
// mount, and on a mount upgraded with `secrets tune -plugin-version` and
// `plugin reload -mounts`, where a dual role keeps its key and a lease issued
// before the upgrade still revokes.
func TestReleaseBuild(t *testing.T) {
	if runtime.GOOS != "linux" && runtime.GOOS != "darwin" {
		t.Skipf("make release builds linux and darwin binaries, not %s", runtime.GOOS)
	}
	// The default platforms, from make's dry run.
	dry, err := exec.Command("make", "-C", repoRoot, "-n", "release").CombinedOutput()
	if err != nil {
		t.Fatalf("make -n release: %v\n%s", err, dry)
	}
	for _, p := range []string{"linux/amd64", "linux/arm64", "darwin/amd64", "darwin/arm64"} {
		if !strings.Contains(string(dry), p) {
			t.Errorf("make release does not build %s:\n%s", p, dry)
		}
	}

	const version = "v0.1.1-e2e.release"
	dist := filepath.Join(workDir, "dist")
	platform := runtime.GOOS + "/" + runtime.GOARCH
	mk := exec.Command("make", "-C", repoRoot, "release", "DIST="+dist, "VERSION="+version, "PLATFORMS="+platform)
	if out, err := mk.CombinedOutput(); err != nil {
		t.Fatalf("make release: %v\n%s", err, out)
	}
	suffix := "_" + strings.TrimPrefix(version, "v") + "_" + runtime.GOOS + "_" + runtime.GOARCH
	pluginFile, demoFile := pluginName+suffix, "demo-provider"+suffix

	// SHA256SUMS lists exactly the binaries, with their sums.
	sums, err := os.ReadFile(filepath.Join(dist, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(sums)), "\n") {
		f := strings.Fields(l)
		if len(f) != 2 {
			t.Fatalf("SHA256SUMS line %q", l)
		}
		listed[strings.TrimPrefix(f[1], "*")] = f[0]
	}
	entries, _ := os.ReadDir(dist)
	if len(listed) != 2 || len(entries) != 3 {
		t.Errorf("dist holds %d files, SHA256SUMS lists %v; want the 2 binaries + SHA256SUMS", len(entries), listed)
	}
	for _, f := range []string{pluginFile, demoFile} {
		sum, err := fileSHA256(filepath.Join(dist, f))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if listed[f] != sum {
			t.Errorf("SHA256SUMS: %s %q, file's sum %s", f, listed[f], sum)
		}
		bi, err := exec.Command("go", "version", "-m", filepath.Join(dist, f)).Output()
		if err != nil {
			t.Fatalf("go version -m %s: %v", f, err)
		}
		for _, want := range []string{"CGO_ENABLED=0", "-trimpath=true", "GOOS=" + runtime.GOOS, "GOARCH=" + runtime.GOARCH} {
			if !strings.Contains(string(bi), want) {
				t.Errorf("%s was not built with %s:\n%s", f, want, bi)
			}
		}
	}
	if out, _ := exec.Command(filepath.Join(dist, demoFile), "-h").CombinedOutput(); !strings.Contains(string(out), "-listen") {
		t.Errorf("%s -h: %s", demoFile, out)
	}

	// Register the release binary as another version of the plugin.
	if runtime.GOOS != "linux" {
		t.Skip("the Vault under test runs linux binaries only")
	}
	if err := copyFile(filepath.Join(dist, pluginFile), filepath.Join(pluginDir, pluginFile)); err != nil {
		t.Fatal(err)
	}
	c := sharedVlt.client
	sum := listed[pluginFile]
	vaultCLI(t, sharedVlt, "plugin", "register", "-sha256="+sum, "-command="+pluginFile, "-version="+version, "secret", pluginName)
	t.Cleanup(func() {
		_ = c.Sys().DeregisterPlugin(&api.DeregisterPluginInput{Name: pluginName, Type: api.PluginTypeSecrets, Version: version})
	})

	fresh, upgraded := uniq("release-new"), uniq("release-upgrade")
	t.Cleanup(func() { c.Sys().Unmount(fresh); c.Sys().Unmount(upgraded) })
	vaultCLI(t, sharedVlt, "secrets", "enable", "-path="+fresh, "-plugin-version="+version, pluginName)
	running := func(mount string) (string, string) {
		t.Helper()
		s, err := c.Logical().Read("sys/mounts/" + mount)
		if err != nil || s == nil {
			t.Fatalf("sys/mounts/%s: %v", mount, err)
		}
		v, _ := s.Data["running_plugin_version"].(string)
		sha, _ := s.Data["running_sha256"].(string)
		return v, sha
	}
	if v, sha := running(fresh); v != version || sha != sum {
		t.Errorf("mount of the release binary runs %s (sha256 %s); want %s (%s)", v, sha, version, sum)
	}
	if _, err := c.Logical().Read(fresh + "/status"); err != nil {
		t.Errorf("%s/status on the release binary: %v", fresh, err)
	}

	if err := sharedVlt.mount(upgraded); err != nil {
		t.Fatal(err)
	}
	if v, _ := running(upgraded); v != pluginVersion {
		t.Fatalf("new mount runs %s, want %s", v, pluginVersion)
	}
	// State the upgrade must carry over: a dual role's current key and an
	// outstanding dynamic lease.
	d := sharedDemo
	write(t, c, upgraded+"/providers/p", map[string]any{"type": "demo", "base_url": d.URL, "admin_key": d.AdminKey})
	write(t, c, upgraded+"/roles/dual", map[string]any{"provider": "p", "mode": "dual", "rotation_period": "1h", "overlap": "10m"})
	write(t, c, upgraded+"/roles/dyn", map[string]any{"provider": "p", "mode": "dynamic", "ttl": "1h"})
	dualBefore := readCreds(t, c, upgraded, "dual")
	lease := readCreds(t, c, upgraded, "dyn")

	vaultCLI(t, sharedVlt, "secrets", "tune", "-plugin-version="+version, upgraded+"/")
	// `vault plugin reload -mounts=…` of the Vault 1.21.0 CLI calls
	// sys/plugins/reload/unknown (a 404) and refuses -type with -mounts, so
	// the mount is reloaded through the API path the docs give.
	if v, _ := running(upgraded); v != pluginVersion {
		t.Errorf("the tune alone switched the running version to %s", v)
	}
	vaultCLI(t, sharedVlt, "write", "sys/plugins/reload/backend", "mounts="+upgraded+"/")
	if v, sha := running(upgraded); v != version || sha != sum {
		t.Errorf("after tune + reload the mount runs %s (sha256 %s); want %s", v, sha, version)
	}
	if _, err := c.Logical().Read(upgraded + "/status"); err != nil {
		t.Errorf("%s/status after the upgrade: %v", upgraded, err)
	}
	// The new version serves the same dual key, revokes the lease the old
	// one issued (deleting its key), and rotates.
	if after := readCreds(t, c, upgraded, "dual"); after.Data["key_id"] != dualBefore.Data["key_id"] {
		t.Errorf("the dual role serves key %v after the upgrade, %v before", after.Data["key_id"], dualBefore.Data["key_id"])
	}
	if err := c.Sys().Revoke(lease.LeaseID); err != nil {
		t.Fatalf("revoking a lease issued before the upgrade: %v", err)
	}
	if code := d.whoami(t, ptS(lease.Data["api_key"])); code != http.StatusUnauthorized {
		t.Errorf("the key of a lease revoked after the upgrade answers whoami %d, want 401", code)
	}
	rot := write(t, c, upgraded+"/rotate-role/dual", map[string]any{})
	if rot.Data["key_id"] == dualBefore.Data["key_id"] {
		t.Errorf("rotate-role after the upgrade kept key %v", rot.Data["key_id"])
	}
	// The shared mount is untouched.
	if v, _ := running("thirdparty"); v != pluginVersion {
		t.Errorf("thirdparty/ runs %s after the other mount's upgrade, want %s", v, pluginVersion)
	}
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
