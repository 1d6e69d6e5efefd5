// Command injector-webhook is the Kubernetes mutating admission webhook
// that adds injector to annotated Pods, as an init container or a native
// sidecar. It is a cluster component with its own binary and image, so the
// injector that runs in every Pod carries no Kubernetes code. See
// docs/kubernetes.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/injector-dev/injector/internal/buildinfo"
	"github.com/injector-dev/injector/internal/envconfig"
	"github.com/injector-dev/injector/internal/logging"
	"github.com/injector-dev/injector/internal/webhook"
)

// Exit codes, as injector's (README.md, "Exit codes").
const (
	exitOK    = 0
	exitSetup = 1 // the server could not start or stopped with an error
	exitUsage = 2 // bad flags or settings
)

// settings is what the webhook reads from its environment; each setting
// NAME may also be given as NAME_FILE.
type settings struct {
	Log logging.Settings
}

func main() {
	// SIGINT/SIGTERM stop the server gracefully.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run runs the webhook until ctx is done and returns the exit code. Flags
// set the defaults that Pod annotations override; see docs/kubernetes.md.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	// --version answers even when the settings are broken.
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "--version" || a == "-version" {
			buildinfo.Get().Print(stdout, "injector-webhook")
			return exitOK
		}
	}
	var s settings
	if err := envconfig.Load(&s, os.Environ()); err != nil {
		fmt.Fprintln(stderr, "injector-webhook:", err)
		return exitUsage
	}
	var (
		logLevel, logFormat                        string
		srv                                        webhook.Server
		cfg                                        webhook.Config
		mode, pullPolicy                           string
		port                                       int
		cpuRequest, cpuLimit, memRequest, memLimit string
		sizeLimit                                  string
	)
	fs := flag.NewFlagSet("injector-webhook", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {} // package flag prints the error; help is asked for
	help := func() {
		fmt.Fprint(stdout, `injector-webhook is the Kubernetes mutating admission webhook that adds
injector to annotated Pods, as an init container or a native sidecar
(docs/kubernetes.md).

Usage:
  injector-webhook --tls-cert-file FILE --tls-key-file FILE --image IMAGE [flags]

Flags:
`)
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		fmt.Fprint(stdout, `  -version
    	print the version, commit, build date, Go version and platform

Exit codes: 0 stopped cleanly, 1 the server could not start or failed,
2 bad flags or settings.
`)
	}
	fs.StringVar(&logLevel, "log-level", s.Log.Level, "debug, info, warn or error (INJECTOR_LOG_LEVEL)")
	fs.StringVar(&logFormat, "log-format", s.Log.Format, "json or console (INJECTOR_LOG_FORMAT)")
	fs.StringVar(&srv.Addr, "listen", ":8443", "HTTPS listen address for /mutate, /healthz and /readyz")
	fs.StringVar(&srv.CertFile, "tls-cert-file", "", "PEM certificate (chain); reloaded when it changes (required)")
	fs.StringVar(&srv.KeyFile, "tls-key-file", "", "PEM private key; reloaded when it changes (required)")
	fs.StringVar(&cfg.Image, "image", "", "injector image for injected containers (required)")
	fs.StringVar(&pullPolicy, "image-pull-policy", string(corev1.PullIfNotPresent), "Always, IfNotPresent or Never")
	fs.StringVar(&mode, "default-mode", string(webhook.ModeInit), "init or sidecar, for Pods without injector.io/mode")
	fs.DurationVar(&cfg.Interval, "default-interval", webhook.DefaultInterval, "sidecar refresh period, for Pods without injector.io/interval")
	fs.DurationVar(&cfg.MinInterval, "min-interval", webhook.DefaultMinInterval, "shortest injector.io/interval a Pod may ask for; the sidecar enforces it too")
	fs.StringVar(&cfg.SecretsPath, "default-secrets-path", webhook.DefaultSecretsPath, "directory of rendered files, for Pods without injector.io/secrets-path")
	fs.StringVar(&cfg.FileMode, "default-file-mode", webhook.DefaultFileMode, "octal mode of rendered files, for Pods without injector.io/file-mode")
	fs.Func("credentials", "`NAMESPACE[/SERVICEACCOUNT]=SECRET:KEY,...`: the credentials Secret of those Pods (repeatable; NAMESPACE * for every namespace)", func(v string) error {
		r, err := webhook.ParseCredentialsRule(v)
		cfg.Credentials = append(cfg.Credentials, r)
		return err
	})
	fs.BoolVar(&cfg.AllowPodCredentials, "allow-pod-credentials", false, "let Pods name their own credentials Secret with injector.io/credentials-secret")
	fs.IntVar(&port, "sidecar-port", webhook.DefaultSidecarPort, "port of the sidecar's /metrics, /healthz and /readyz, for Pods without injector.io/port")
	fs.StringVar(&cpuRequest, "cpu-request", "10m", "CPU request of the injected container")
	fs.StringVar(&cpuLimit, "cpu-limit", "", "CPU limit of the injected container (\"\" = none)")
	fs.StringVar(&memRequest, "memory-request", "32Mi", "memory request of the injected container")
	fs.StringVar(&memLimit, "memory-limit", "128Mi", "memory limit of the injected container (\"\" = none)")
	fs.StringVar(&sizeLimit, "secrets-size-limit", "1Mi", "size limit of the in-memory secrets volume (\"\" = none)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			help()
			return exitOK
		}
		fmt.Fprintln(stderr, "Run 'injector-webhook --help' for usage.")
		return exitUsage
	}
	usage := func(err error) int {
		fmt.Fprintln(stderr, "injector-webhook:", err)
		return exitUsage
	}
	if fs.NArg() > 0 {
		return usage(fmt.Errorf("unexpected arguments %q", fs.Args()))
	}
	if srv.CertFile == "" || srv.KeyFile == "" || cfg.Image == "" {
		return usage(errors.New("--tls-cert-file, --tls-key-file and --image are required"))
	}
	switch p := corev1.PullPolicy(pullPolicy); p {
	case corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever:
		cfg.ImagePullPolicy = p
	default:
		return usage(fmt.Errorf("--image-pull-policy %q: want Always, IfNotPresent or Never", pullPolicy))
	}
	cfg.Mode = webhook.Mode(mode)
	if port < 1 || port > 65535 {
		return usage(fmt.Errorf("--sidecar-port %d: want 1-65535", port))
	}
	cfg.SidecarPort = int32(port)
	cfg.Resources = corev1.ResourceRequirements{Requests: corev1.ResourceList{}, Limits: corev1.ResourceList{}}
	for _, q := range []struct {
		flag, value string
		list        corev1.ResourceList
		name        corev1.ResourceName
	}{
		{"--cpu-request", cpuRequest, cfg.Resources.Requests, corev1.ResourceCPU},
		{"--cpu-limit", cpuLimit, cfg.Resources.Limits, corev1.ResourceCPU},
		{"--memory-request", memRequest, cfg.Resources.Requests, corev1.ResourceMemory},
		{"--memory-limit", memLimit, cfg.Resources.Limits, corev1.ResourceMemory},
	} {
		if q.value == "" {
			continue
		}
		v, err := resource.ParseQuantity(q.value)
		if err != nil {
			return usage(fmt.Errorf("%s %q: %v", q.flag, q.value, err))
		}
		q.list[q.name] = v
	}
	if sizeLimit != "" {
		v, err := resource.ParseQuantity(sizeLimit)
		if err != nil {
			return usage(fmt.Errorf("--secrets-size-limit %q: %v", sizeLimit, err))
		}
		cfg.SecretsSizeLimit = v
	}

	if err := cfg.Validate(); err != nil {
		return usage(fmt.Errorf("bad defaults: %w", err))
	}

	log, err := logging.New(logLevel, logFormat, stderr)
	if err != nil {
		return usage(err)
	}
	srv.Log = log
	srv.Handler = &webhook.Handler{Config: cfg, Log: log}
	log.Info().Str("version", buildinfo.Get().Version).Str("image", cfg.Image).Str("default_mode", mode).
		Int("credentials_rules", len(cfg.Credentials)).Bool("allow_pod_credentials", cfg.AllowPodCredentials).Msg("starting webhook")
	if len(cfg.Credentials) == 0 && !cfg.AllowPodCredentials {
		log.Warn().Msg("no --credentials rules: every Pod that asks for injection is denied until one maps its namespace")
	}
	if err := srv.ListenAndServe(ctx); err != nil {
		log.Error().Err(err).Msg("webhook stopped")
		return exitSetup
	}
	return exitOK
}
