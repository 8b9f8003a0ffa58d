// Command controller runs the cert-manager controller of the pinned
// github.com/cert-manager/cert-manager release for the local test cluster.
//
// Since v1.12 upstream keeps its controller main in a separate module
// (controller-binary) that the Go module proxy does not serve, so this small
// main of ours assembles the same program from the root module's packages:
// flags and an optional --config file fill a ControllerConfiguration, which is
// validated, then the registered controllers run (with leader election,
// metrics and healthz servers) until SIGINT/SIGTERM. The flag names match the
// upstream controller, so the Deployment args the Helm chart writes parse here.
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	config "github.com/cert-manager/cert-manager/internal/apis/config/controller"
	configscheme "github.com/cert-manager/cert-manager/internal/apis/config/controller/scheme"
	defaults "github.com/cert-manager/cert-manager/internal/apis/config/controller/v1alpha1"
	"github.com/cert-manager/cert-manager/internal/apis/config/controller/validation"
	"github.com/cert-manager/cert-manager/internal/apis/config/shared"
	cmdutil "github.com/cert-manager/cert-manager/internal/cmd/util"
	"github.com/cert-manager/cert-manager/internal/controller/feature"
	"github.com/cert-manager/cert-manager/internal/pem"
	configv1alpha1 "github.com/cert-manager/cert-manager/pkg/apis/config/controller/v1alpha1"
	"github.com/cert-manager/cert-manager/pkg/controller"
	controllerconfigfile "github.com/cert-manager/cert-manager/pkg/controller/configfile"
	"github.com/cert-manager/cert-manager/pkg/healthz"
	dnsutil "github.com/cert-manager/cert-manager/pkg/issuer/acme/dns/util"
	logf "github.com/cert-manager/cert-manager/pkg/logs"
	"github.com/cert-manager/cert-manager/pkg/server"
	servertls "github.com/cert-manager/cert-manager/pkg/server/tls"
	"github.com/cert-manager/cert-manager/pkg/server/tls/authority"
	"github.com/cert-manager/cert-manager/pkg/util"
	"github.com/cert-manager/cert-manager/pkg/util/configfile"
	utilfeature "github.com/cert-manager/cert-manager/pkg/util/feature"
	"github.com/cert-manager/cert-manager/pkg/util/profiling"

	// Every package whose init() registers a controller or an issuer type.
	_ "github.com/cert-manager/cert-manager/pkg/controller/acmechallenges"
	_ "github.com/cert-manager/cert-manager/pkg/controller/acmeorders"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificate-shim/gateways"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificate-shim/ingresses"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificate-shim/listenerset"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/acme"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/approver"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/ca"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/selfsigned"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/vault"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/venafi"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/issuing"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/keymanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/metrics"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/readiness"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/requestmanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/revisionmanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/trigger"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificatesigningrequests/acme"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificatesigningrequests/ca"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificatesigningrequests/selfsigned"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificatesigningrequests/vault"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificatesigningrequests/venafi"
	_ "github.com/cert-manager/cert-manager/pkg/controller/clusterissuers"
	_ "github.com/cert-manager/cert-manager/pkg/controller/issuers"
	_ "github.com/cert-manager/cert-manager/pkg/issuer/acme"
	_ "github.com/cert-manager/cert-manager/pkg/issuer/ca"
	_ "github.com/cert-manager/cert-manager/pkg/issuer/selfsigned"
	_ "github.com/cert-manager/cert-manager/pkg/issuer/vault"
	_ "github.com/cert-manager/cert-manager/pkg/issuer/venafi"
)

// listenerSetController is the name the listenerset package registers under.
const listenerSetController = "listenerset"

func main() {
	ctx, exit := cmdutil.SetupExitHandler(context.Background(), cmdutil.GracefulShutdown)
	defer exit() // runs os.Exit with the code SetExitCode recorded, after the deferred flush
	defer logf.FlushLogs()
	logf.InitLogs()

	ctx = logf.NewContext(ctx, logf.Log, "controller")
	if err := newCommand(os.Args[1:]).ExecuteContext(ctx); err != nil {
		logf.Log.Error(err, "cert-manager controller failed")
		cmdutil.SetExitCode(err)
	}
}

// defaultConfiguration returns the upstream defaults (v1alpha1 defaulting
// functions) converted to the internal configuration type.
func defaultConfiguration() (*config.ControllerConfiguration, error) {
	scheme, _, err := configscheme.NewSchemeAndCodecs()
	if err != nil {
		return nil, err
	}
	versioned := &configv1alpha1.ControllerConfiguration{}
	scheme.Default(versioned)
	cfg := &config.ControllerConfiguration{}
	if err := scheme.Convert(versioned, cfg, nil); err != nil {
		return nil, err
	}
	return cfg, nil
}

func newCommand(args []string) *cobra.Command {
	cfg, err := defaultConfiguration()
	if err != nil {
		// Only a broken build can get here: the defaults are compiled in.
		fmt.Fprintf(os.Stderr, "cannot build the default controller configuration: %v\n", err)
		os.Exit(1)
	}
	var configFile string

	cmd := &cobra.Command{
		Use:   "controller",
		Short: fmt.Sprintf("cert-manager controller %s, built for the zerotrust.mtls local test cluster", util.AppVersion),
		// Errors are logged once by main; a usage dump would hide them.
		SilenceErrors: true,
		SilenceUsage:  true,
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			return finishConfiguration(cmd, args, configFile, cfg)
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			return run(cmd.Context(), cfg)
		},
	}
	cmd.Flags().StringVar(&configFile, "config", "", "Path to a file containing a ControllerConfiguration object used to configure the controller")
	addFlags(cmd, cfg)
	cmd.SetArgs(args)
	return cmd
}

// finishConfiguration applies the feature gates, then the --config file (flags
// given on the command line win over the file, as upstream), and validates.
func finishConfiguration(cmd *cobra.Command, args []string, configFile string, cfg *config.ControllerConfiguration) error {
	setGates := func() error {
		if err := utilfeature.DefaultMutableFeatureGate.SetFromMap(cfg.FeatureGates); err != nil {
			return fmt.Errorf("invalid --feature-gates: %w", err)
		}
		return nil
	}
	if err := setGates(); err != nil {
		return err
	}
	if configFile != "" {
		path, err := filepath.Abs(configFile)
		if err != nil {
			return fmt.Errorf("cannot resolve config file %s: %w", configFile, err)
		}
		loader, err := configfile.NewConfigurationFSLoader(nil, path)
		if err != nil {
			return fmt.Errorf("cannot load config file %s: %w", path, err)
		}
		fromFile := controllerconfigfile.New()
		if err := loader.Load(fromFile); err != nil {
			return fmt.Errorf("cannot load config file %s: %w", path, err)
		}
		fromFile.Config.DeepCopyInto(cfg)
		// Parse the command line again so that explicit flags override the file.
		if err := cmd.Flags().Parse(args); err != nil {
			return fmt.Errorf("cannot parse the flags again after loading %s: %w", path, err)
		}
		if err := setGates(); err != nil {
			return err
		}
	}
	if errs := validation.ValidateControllerConfiguration(cfg, nil); len(errs) > 0 {
		return fmt.Errorf("invalid controller configuration: %w", errs.ToAggregate())
	}
	if err := logf.ValidateAndApply(&cfg.Logging); err != nil {
		return fmt.Errorf("invalid logging flags: %w", err)
	}
	return nil
}

// enabledControllers resolves --controllers ("*", "name", "-name") against the
// upstream default and optional controller lists.
func enabledControllers(cfg *config.ControllerConfiguration) sets.Set[string] {
	enabled := sets.New[string]()
	var disabled []string
	for _, name := range cfg.Controllers {
		switch {
		case name == "*":
			enabled.Insert(defaults.DefaultEnabledControllers...)
		case strings.HasPrefix(name, "-"):
			disabled = append(disabled, strings.TrimPrefix(name, "-"))
		default:
			enabled.Insert(name)
		}
	}
	if enabled.Len() == 0 && len(disabled) > 0 {
		enabled.Insert(defaults.DefaultEnabledControllers...)
	}
	gates := utilfeature.DefaultFeatureGate
	if gates.Enabled(feature.ExperimentalCertificateSigningRequestControllers) {
		enabled.Insert(defaults.ExperimentalCertificateSigningRequestControllers...)
	}
	if gates.Enabled(feature.ExperimentalGatewayAPISupport) && cfg.EnableGatewayAPI {
		enabled.Insert("gateway-shim")
		if gates.Enabled(feature.ListenerSets) && cfg.EnableGatewayAPIListenerSet {
			enabled.Insert(listenerSetController)
		}
	}
	if cfg.Namespace != "" {
		enabled.Delete(defaults.ClusterScopedControllers...)
	}
	enabled.Delete(disabled...)
	return enabled
}

func run(ctx context.Context, cfg *config.ControllerConfiguration) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	log := logf.FromContext(ctx)
	group, ctx := errgroup.WithContext(ctx)

	// A controller this program forgot to link would silently never run.
	known := controller.Known()
	for _, name := range defaults.AllControllers {
		if _, ok := known[name]; !ok {
			return fmt.Errorf("controller %q is not linked into this binary; add its package to the imports of main.go", name)
		}
	}

	pem.SetGlobalSizeLimits(pem.NewSizeLimitsFromConfig(
		cfg.PEMSizeLimitsConfig.MaxCertificateSize, cfg.PEMSizeLimitsConfig.MaxPrivateKeySize,
		cfg.PEMSizeLimitsConfig.MaxChainLength, cfg.PEMSizeLimitsConfig.MaxBundleSize))

	factory, err := newContextFactory(ctx, cfg)
	if err != nil {
		return err
	}
	base, err := factory.Build()
	if err != nil {
		return err
	}
	// The collectors behind certmanager_certificate_expiration_timestamp_seconds and the
	// other per-object series read the informers' listers. Metrics.NewServer registers only
	// the collectors that exist when it is called, so set them up first (upstream's
	// controller main does the same); the informers start later, with the others.
	informers := base.SharedInformerFactory
	base.Metrics.SetupACMECollector(informers.Acme().V1().Challenges().Lister())
	base.Metrics.SetupCertificateCollector(informers.Certmanager().V1().Certificates().Lister())
	base.Metrics.SetupIssuerCollector(informers.Certmanager().V1().Issuers().Lister())
	base.Metrics.SetupClusterIssuerCollector(informers.Certmanager().V1().ClusterIssuers().Lister())
	enabled := enabledControllers(cfg)
	log.Info("enabled controllers", "controllers", sets.List(enabled))

	// Metrics (TLS when a certificate source is configured).
	source := certificateSource(cfg.MetricsTLSConfig, base)
	if source != nil {
		group.Go(func() error {
			if err := source.Start(ctx); err != nil && !errors.Is(err, context.Canceled) {
				return err
			}
			return nil
		})
	}
	metricsListener, err := server.Listen(ctx, "tcp", cfg.MetricsListenAddress,
		server.WithCertificateSource(source),
		server.WithTLSCipherSuites(cfg.MetricsTLSConfig.CipherSuites),
		server.WithTLSMinVersion(cfg.MetricsTLSConfig.MinTLSVersion))
	if err != nil {
		return fmt.Errorf("cannot listen on the metrics address %s: %w", cfg.MetricsListenAddress, err)
	}
	serveHTTP(ctx, group, base.Metrics.NewServer(metricsListener), metricsListener)

	if cfg.EnablePprof {
		pprofListener, err := net.Listen("tcp", cfg.PprofAddress)
		if err != nil {
			return fmt.Errorf("cannot listen on the profiler address %s: %w", cfg.PprofAddress, err)
		}
		mux := http.NewServeMux()
		profiling.Install(mux)
		serveHTTP(ctx, group, &http.Server{Handler: mux, ReadHeaderTimeout: 32 * time.Second}, pprofListener)
	}

	healthzListener, err := net.Listen("tcp", cfg.HealthzListenAddress)
	if err != nil {
		return fmt.Errorf("cannot listen on the healthz address %s: %w", cfg.HealthzListenAddress, err)
	}
	health := healthz.NewServer(cfg.LeaderElectionConfig.HealthzTimeout)
	group.Go(func() error { return health.Start(ctx, healthzListener) })

	elected := make(chan struct{})
	if cfg.LeaderElectionConfig.Enabled {
		group.Go(func() error { return leaderElection(ctx, cfg, factory, health, elected) })
	} else {
		close(elected)
	}
	select {
	case <-ctx.Done():
		return group.Wait()
	case <-elected:
	}

	for name, constructor := range known {
		if !enabled.Has(name) {
			continue
		}
		c, err := constructor(factory)
		if err != nil {
			cancel()
			_ = group.Wait()
			return fmt.Errorf("cannot start controller %s: %w", name, err)
		}
		group.Go(func() error {
			log.V(logf.InfoLevel).Info("starting controller", "controller", name)
			return c.Run(cfg.NumberOfConcurrentWorkers, ctx)
		})
	}

	gateway := utilfeature.DefaultFeatureGate.Enabled(feature.ExperimentalGatewayAPISupport) && cfg.EnableGatewayAPI
	base.SharedInformerFactory.Start(ctx.Done())
	base.KubeSharedInformerFactory.Start(ctx.Done())
	base.HTTP01ResourceMetadataInformersFactory.Start(ctx.Done())
	if gateway {
		base.GWShared.Start(ctx.Done())
	}

	err = group.Wait()
	if gateway {
		base.GWShared.Shutdown()
	}
	base.HTTP01ResourceMetadataInformersFactory.Shutdown()
	base.KubeSharedInformerFactory.Shutdown()
	base.SharedInformerFactory.Shutdown()
	return err
}

// serveHTTP serves srv on l until ctx ends, then shuts it down within 5 s.
func serveHTTP(ctx context.Context, group *errgroup.Group, srv *http.Server, l net.Listener) {
	group.Go(func() error {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(shutdownCtx) //nolint:contextcheck // ctx is already done here
	})
	group.Go(func() error {
		if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
}

func leaderElection(ctx context.Context, cfg *config.ControllerConfiguration, factory *controller.ContextFactory, health *healthz.Server, elected chan struct{}) error {
	leCtx, err := factory.Build("leader-election")
	if err != nil {
		return err
	}
	host, err := os.Hostname()
	if err != nil {
		return fmt.Errorf("cannot read the hostname for the leader election identity: %w", err)
	}
	lock, err := resourcelock.New(resourcelock.LeasesResourceLock,
		cfg.LeaderElectionConfig.Namespace, "cert-manager-controller",
		leCtx.Client.CoreV1(), leCtx.Client.CoordinationV1(),
		resourcelock.ResourceLockConfig{Identity: host + "-external-cert-manager-controller", EventRecorder: leCtx.Recorder})
	if err != nil {
		return fmt.Errorf("cannot create the leader election lock: %w", err)
	}
	lost := make(chan error, 1)
	elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   cfg.LeaderElectionConfig.LeaseDuration,
		RenewDeadline:   cfg.LeaderElectionConfig.RenewDeadline,
		RetryPeriod:     cfg.LeaderElectionConfig.RetryPeriod,
		ReleaseOnCancel: true,
		WatchDog:        health.LeaderHealthzAdaptor,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(context.Context) { close(elected) },
			OnStoppedLeading: func() {
				if ctx.Err() == nil {
					lost <- errors.New("leader election lost")
				}
			},
		},
	})
	if err != nil {
		return err
	}
	elector.Run(ctx)
	select {
	case err := <-lost:
		return err
	default:
		return nil
	}
}

func newContextFactory(ctx context.Context, cfg *config.ControllerConfiguration) (*controller.ContextFactory, error) {
	h := cfg.ACMEHTTP01Config
	var requestCPU, requestMemory, limitsCPU, limitsMemory resource.Quantity
	for _, q := range []struct {
		into        *resource.Quantity
		flag, value string
	}{
		{&requestCPU, "acme-http01-solver-resource-request-cpu", h.SolverResourceRequestCPU},
		{&requestMemory, "acme-http01-solver-resource-request-memory", h.SolverResourceRequestMemory},
		{&limitsCPU, "acme-http01-solver-resource-limits-cpu", h.SolverResourceLimitsCPU},
		{&limitsMemory, "acme-http01-solver-resource-limits-memory", h.SolverResourceLimitsMemory},
	} {
		parsed, err := resource.ParseQuantity(q.value)
		if err != nil {
			return nil, fmt.Errorf("invalid --%s %q: %w", q.flag, q.value, err)
		}
		*q.into = parsed
	}
	nameservers := cfg.ACMEDNS01Config.RecursiveNameservers
	if len(nameservers) == 0 {
		nameservers = dnsutil.RecursiveNameservers
	}
	return controller.NewContextFactory(ctx, controller.ContextOptions{
		APIServerHost:      cfg.APIServerHost,
		Kubeconfig:         cfg.KubeConfig,
		KubernetesAPIQPS:   cfg.KubernetesAPIQPS,
		KubernetesAPIBurst: cfg.KubernetesAPIBurst,
		Namespace:          cfg.Namespace,
		IssuerOptions: controller.IssuerOptions{
			ClusterResourceNamespace:        cfg.ClusterResourceNamespace,
			ClusterIssuerAmbientCredentials: cfg.ClusterIssuerAmbientCredentials,
			IssuerAmbientCredentials:        cfg.IssuerAmbientCredentials,
		},
		ACMEOptions: controller.ACMEOptions{
			HTTP01SolverImage:                 h.SolverImage,
			HTTP01SolverResourceRequestCPU:    requestCPU,
			HTTP01SolverResourceRequestMemory: requestMemory,
			HTTP01SolverResourceLimitsCPU:     limitsCPU,
			HTTP01SolverResourceLimitsMemory:  limitsMemory,
			ACMEHTTP01SolverRunAsNonRoot:      h.SolverRunAsNonRoot,
			HTTP01SolverNameservers:           h.SolverNameservers,
			DNS01Nameservers:                  nameservers,
			DNS01CheckAuthoritative:           !cfg.ACMEDNS01Config.RecursiveNameserversOnly,
			DNS01CheckRetryPeriod:             cfg.ACMEDNS01Config.CheckRetryPeriod,
		},
		SchedulerOptions: controller.SchedulerOptions{MaxConcurrentChallenges: cfg.MaxConcurrentChallenges},
		IngressShimOptions: controller.IngressShimOptions{
			DefaultIssuerName:                 cfg.IngressShimConfig.DefaultIssuerName,
			DefaultIssuerKind:                 cfg.IngressShimConfig.DefaultIssuerKind,
			DefaultIssuerGroup:                cfg.IngressShimConfig.DefaultIssuerGroup,
			DefaultAutoCertificateAnnotations: cfg.IngressShimConfig.DefaultAutoCertificateAnnotations,
			ExtraCertificateAnnotations:       cfg.IngressShimConfig.ExtraCertificateAnnotations,
		},
		CertificateOptions: controller.CertificateOptions{
			EnableOwnerRef:                           cfg.EnableCertificateOwnerRef,
			CopiedAnnotationPrefixes:                 cfg.CopiedAnnotationPrefixes,
			CertificateRequestMinimumBackoffDuration: cfg.CertificateRequestMinimumBackoffDuration,
		},
		ConfigOptions: controller.ConfigOptions{
			EnableGatewayAPI:            cfg.EnableGatewayAPI,
			EnableGatewayAPIListenerSet: cfg.EnableGatewayAPIListenerSet,
		},
	})
}

// certificateSource returns the TLS certificate source of the metrics server,
// or nil to serve plain HTTP.
func certificateSource(tlsConfig shared.TLSConfig, base *controller.Context) servertls.CertificateSource {
	switch {
	case tlsConfig.FilesystemConfigProvided():
		return &servertls.FileCertificateSource{CertPath: tlsConfig.Filesystem.CertFile, KeyPath: tlsConfig.Filesystem.KeyFile}
	case tlsConfig.DynamicConfigProvided():
		return &servertls.DynamicSource{
			DNSNames: tlsConfig.Dynamic.DNSNames,
			Authority: &authority.DynamicAuthority{
				SecretNamespace: tlsConfig.Dynamic.SecretNamespace,
				SecretName:      tlsConfig.Dynamic.SecretName,
				SecretLabels:    map[string]string{"app.kubernetes.io/managed-by": "cert-manager"},
				LeafDuration:    tlsConfig.Dynamic.LeafDuration,
				RESTConfig:      base.RESTConfig,
			},
		}
	}
	return nil
}
