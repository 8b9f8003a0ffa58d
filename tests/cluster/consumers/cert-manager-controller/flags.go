package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	cliflag "k8s.io/component-base/cli/flag"

	config "github.com/cert-manager/cert-manager/internal/apis/config/controller"
	defaults "github.com/cert-manager/cert-manager/internal/apis/config/controller/v1alpha1"
	logf "github.com/cert-manager/cert-manager/pkg/logs"
	utilfeature "github.com/cert-manager/cert-manager/pkg/util/feature"
)

// flagBinding binds one setting of the configuration to a command-line flag. value
// points at the setting; the flag's default is the value it already holds (the
// upstream default).
type flagBinding struct {
	value any
	name  string
	usage string
}

// addFlags binds the upstream controller's command-line flags to cfg.
// Settings without a flag here can still be given in the --config file.
func addFlags(cmd *cobra.Command, c *config.ControllerConfiguration) {
	fs := cmd.Flags()
	h := &c.ACMEHTTP01Config
	t := &c.MetricsTLSConfig
	bindFlags(fs, []flagBinding{
		// Connection to the API server.
		{&c.APIServerHost, "master", "Address of the Kubernetes API server (overrides the kubeconfig's server)."},
		{&c.KubeConfig, "kubeconfig", "Path to a kubeconfig; only needed out of cluster."},
		{&c.KubernetesAPIQPS, "kube-api-qps", "Maximum queries per second to the Kubernetes API server."},
		{&c.KubernetesAPIBurst, "kube-api-burst", "Maximum burst of queries to the Kubernetes API server."},

		// Scope.
		{&c.ClusterResourceNamespace, "cluster-resource-namespace", "Namespace holding the Secrets referenced by cluster-scoped resources such as ClusterIssuers."},
		{&c.Namespace, "namespace", "Watch only this namespace (disables ClusterIssuers); empty watches all namespaces."},
		{&c.Controllers, "controllers", "Controllers to run: '*' for the defaults, 'name' to add one, '-name' to remove one. All controllers: " + strings.Join(defaults.AllControllers, ", ")},

		// Leader election.
		{&c.LeaderElectionConfig.Enabled, "leader-elect", "Elect a leader among controller replicas with a Lease."},
		{&c.LeaderElectionConfig.Namespace, "leader-election-namespace", "Namespace of the leader election Lease."},
		{&c.LeaderElectionConfig.LeaseDuration, "leader-election-lease-duration", "How long non-leaders wait after a renewal before trying to take over."},
		{&c.LeaderElectionConfig.RenewDeadline, "leader-election-renew-deadline", "How long the leader keeps trying to renew before it gives up."},
		{&c.LeaderElectionConfig.RetryPeriod, "leader-election-retry-period", "Wait between attempts to acquire or renew the Lease."},

		// Issuers and certificates.
		{&c.ClusterIssuerAmbientCredentials, "cluster-issuer-ambient-credentials", "Let ClusterIssuers use ambient credentials (metadata services, environment)."},
		{&c.IssuerAmbientCredentials, "issuer-ambient-credentials", "Let Issuers use ambient credentials (metadata services, environment)."},
		{&c.EnableCertificateOwnerRef, "enable-certificate-owner-ref", "Make each Certificate the owner of its Secret, so the Secret is deleted with it."},
		{&c.CopiedAnnotationPrefixes, "copied-annotation-prefixes", "Annotation prefixes copied from Certificates to CertificateRequests and Orders ('-prefix' excludes one)."},
		{&c.CertificateRequestMinimumBackoffDuration, "certificate-request-minimum-backoff-duration", "First backoff after a failed CertificateRequest; it doubles with each failure."},
		{&c.NumberOfConcurrentWorkers, "concurrent-workers", "Concurrent workers of each controller."},

		// Ingress and Gateway shims.
		{&c.IngressShimConfig.DefaultAutoCertificateAnnotations, "auto-certificate-annotations", "Annotations by which an Ingress asks for a certificate."},
		{&c.IngressShimConfig.ExtraCertificateAnnotations, "extra-certificate-annotations", "Annotations copied from an Ingress or Gateway to the Certificate the shim creates."},
		{&c.IngressShimConfig.DefaultIssuerName, "default-issuer-name", "Issuer name for Ingresses that ask for TLS without naming one."},
		{&c.IngressShimConfig.DefaultIssuerKind, "default-issuer-kind", "Issuer kind for Ingresses that ask for TLS without naming one."},
		{&c.IngressShimConfig.DefaultIssuerGroup, "default-issuer-group", "Issuer group for Ingresses that ask for TLS without naming one."},
		{&c.EnableGatewayAPI, "enable-gateway-api", "Enable the Gateway API certificate shim and HTTP-01 solver (the ExperimentalGatewayAPISupport gate must be on too)."},

		// ACME.
		{&h.SolverImage, "acme-http01-solver-image", "Image of the ACME HTTP-01 solver pods."},
		{&h.SolverResourceRequestCPU, "acme-http01-solver-resource-request-cpu", "CPU request of the HTTP-01 solver pods."},
		{&h.SolverResourceRequestMemory, "acme-http01-solver-resource-request-memory", "Memory request of the HTTP-01 solver pods."},
		{&h.SolverResourceLimitsCPU, "acme-http01-solver-resource-limits-cpu", "CPU limit of the HTTP-01 solver pods."},
		{&h.SolverResourceLimitsMemory, "acme-http01-solver-resource-limits-memory", "Memory limit of the HTTP-01 solver pods."},
		{&h.SolverRunAsNonRoot, "acme-http01-solver-run-as-non-root", "Run the HTTP-01 solver pods as non-root."},
		{&h.SolverNameservers, "acme-http01-solver-nameservers", "host:port DNS servers for the HTTP-01 self check."},
		{&c.ACMEDNS01Config.RecursiveNameservers, "dns01-recursive-nameservers", "host:port or https:// (DoH) resolvers for the DNS-01 self check."},
		{&c.ACMEDNS01Config.RecursiveNameserversOnly, "dns01-recursive-nameservers-only", "Query only the configured resolvers in the DNS-01 self check."},
		{&c.ACMEDNS01Config.CheckRetryPeriod, "dns01-check-retry-period", "Wait between ACME propagation checks (DNS-01 and HTTP-01)."},
		{&c.MaxConcurrentChallenges, "max-concurrent-challenges", "Maximum number of ACME challenges processed at once."},

		// Servers: metrics (optionally TLS), profiler, healthz.
		{&c.MetricsListenAddress, "metrics-listen-address", "host:port of the metrics server."},
		{&t.Filesystem.CertFile, "metrics-tls-cert-file", "TLS certificate file of the metrics server."},
		{&t.Filesystem.KeyFile, "metrics-tls-private-key-file", "TLS private key file of the metrics server."},
		{&t.Dynamic.LeafDuration, "metrics-dynamic-serving-leaf-duration", "Lifetime of the dynamically issued metrics serving certificates."},
		{&t.Dynamic.SecretNamespace, "metrics-dynamic-serving-ca-secret-namespace", "Namespace of the Secret holding the dynamic serving CA."},
		{&t.Dynamic.SecretName, "metrics-dynamic-serving-ca-secret-name", "Name of the Secret holding the dynamic serving CA."},
		{&t.Dynamic.DNSNames, "metrics-dynamic-serving-dns-names", "DNS names of the dynamic serving certificates."},
		{&t.CipherSuites, "metrics-tls-cipher-suites", "TLS cipher suites of the metrics server: " + strings.Join(cliflag.TLSCipherPossibleValues(), ",")},
		{&t.MinTLSVersion, "metrics-tls-min-version", "Minimum TLS version of the metrics server: " + strings.Join(cliflag.TLSPossibleVersions(), ", ")},
		{&c.EnablePprof, "enable-profiling", "Serve Go pprof endpoints on --profiler-address."},
		{&c.PprofAddress, "profiler-address", "host:port of the profiler (keep it on loopback)."},
		{&c.HealthzListenAddress, "internal-healthz-listen-address", "host:port of the /livez server."},
		{&c.LeaderElectionConfig.HealthzTimeout, "internal-healthz-leader-election-timeout", "How long after the Lease expires /livez still reports healthy."},
	})
	fs.Var(cliflag.NewMapStringBool(&c.FeatureGates), "feature-gates", "Feature gates as key=value pairs. Known gates:\n"+strings.Join(utilfeature.DefaultFeatureGate.KnownFeatures(), "\n"))
	_ = fs.MarkHidden("internal-healthz-listen-address")
	_ = fs.MarkHidden("internal-healthz-leader-election-timeout")

	logf.AddFlags(&c.Logging, fs)
}

func bindFlags(fs *pflag.FlagSet, flags []flagBinding) {
	for _, f := range flags {
		switch p := f.value.(type) {
		case *string:
			fs.StringVar(p, f.name, *p, f.usage)
		case *[]string:
			fs.StringSliceVar(p, f.name, *p, f.usage)
		case *bool:
			fs.BoolVar(p, f.name, *p, f.usage)
		case *int:
			fs.IntVar(p, f.name, *p, f.usage)
		case *float32:
			fs.Float32Var(p, f.name, *p, f.usage)
		case *time.Duration:
			fs.DurationVar(p, f.name, *p, f.usage)
		default:
			panic(fmt.Sprintf("flag --%s: no binding for a setting of type %T", f.name, f.value))
		}
	}
}
