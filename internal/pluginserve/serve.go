// Package pluginserve serves a secrets backend as an external Vault plugin:
// the sdk's plugin.ServeMultiplex (same protocol versions, handshake, mlock
// and message size limits) with one more gRPC server option, stream workers.
// The plugin binary and the bench's floor plugin both serve through it, so
// the bench's floor has the plugin's transport exactly.
package pluginserve

import (
	"crypto/tls"
	"math"
	"os"

	hclog "github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/sdk/helper/pluginutil"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/hashicorp/vault/sdk/plugin"
	"google.golang.org/grpc"
)

// streamWorkers is the number of goroutines the plugin's gRPC server keeps
// to run Vault's requests (a request finding them all busy gets a goroutine
// of its own, as without workers). A new goroutine per request grows its
// stack again on every request (decoding the request alone does), which was
// 8% of the plugin's CPU on a dual creds read; a worker keeps its stack.
const streamWorkers = 64

// Main parses the flags Vault passes to a plugin and serves factory's
// backend until Vault stops the process.
func Main(factory logical.Factory) {
	meta := &api.PluginAPIClientMeta{}
	flags := meta.FlagSet()
	if err := flags.Parse(os.Args[1:]); err != nil {
		fatal(err)
	}
	if err := serve(factory, api.VaultPluginTLSProvider(meta.GetTLSConfig())); err != nil {
		fatal(err)
	}
}

func serve(factory logical.Factory, tlsProvider func() (*tls.Config, error)) error {
	logger := hclog.New(&hclog.LoggerOptions{Level: hclog.Trace, Output: os.Stderr, JSONFormat: true})
	backendPlugin := func(multiplexing bool) goplugin.PluginSet {
		return goplugin.PluginSet{"backend": &plugin.GRPCBackendPlugin{
			Factory: factory, MultiplexingSupport: multiplexing, Logger: logger,
		}}
	}
	if err := pluginutil.OptionallyEnableMlock(); err != nil {
		return err
	}
	goplugin.Serve(&goplugin.ServeConfig{
		HandshakeConfig: plugin.HandshakeConfig,
		// 3 and 4 are the protocol versions of plugins built against older
		// sdks (no multiplexing); Vault picks the highest both sides speak.
		VersionedPlugins: map[int]goplugin.PluginSet{3: backendPlugin(false), 4: backendPlugin(false), 5: backendPlugin(true)},
		Logger:           logger,
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			opts = append(opts, grpc.MaxRecvMsgSize(math.MaxInt32), grpc.MaxSendMsgSize(math.MaxInt32),
				grpc.NumStreamWorkers(streamWorkers))
			return goplugin.DefaultGRPCServer(opts)
		},
		// Used by protocol versions 3 and 4 only; 5 uses AutoMTLS.
		TLSProvider: tlsProvider,
	})
	return nil
}

func fatal(err error) {
	hclog.New(&hclog.LoggerOptions{}).Error("plugin shutting down", "error", err)
	os.Exit(1)
}
