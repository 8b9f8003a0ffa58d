package main

import (
	"strings"

	"github.com/spf13/cobra"
	cliflag "k8s.io/component-base/cli/flag"

	config "github.com/cert-manager/cert-manager/internal/apis/config/controller"
	defaults "github.com/cert-manager/cert-manager/internal/apis/config/controller/v1alpha1"
	logf "github.com/cert-manager/cert-manager/pkg/logs"
	utilfeature "github.com/cert-manager/cert-manager/pkg/util/feature"
)

// addFlags binds the upstream controller's command-line flags to cfg; each
// flag's default is the value cfg already holds (the upstream defaults).
// Settings without a flag here can still be given in the --config file.
func addFlags(cmd *cobra.Command, c *config.ControllerConfiguration) {
	fs := cmd.Flags()

	// Connection to the API server.
	fs.StringVar(&c.APIServerHost, "master", c.APIServerHost, "Address of the Kubernetes API server (overrides the kubeconfig's server).")
	fs.StringVar(&c.KubeConfig, "kubeconfig", c.KubeConfig, "Path to a kubeconfig; only needed out of cluster.")
	fs.Float32Var(&c.KubernetesAPIQPS, "kube-api-qps", c.KubernetesAPIQPS, "Maximum queries per second to the Kubernetes API server.")
	fs.IntVar(&c.KubernetesAPIBurst, "kube-api-burst", c.KubernetesAPIBurst, "Maximum burst of queries to the Kubernetes API server.")

	// Scope.
	fs.StringVar(&c.ClusterResourceNamespace, "cluster-resource-namespace", c.ClusterResourceNamespace, "Namespace holding the Secrets referenced by cluster-scoped resources such as ClusterIssuers.")
	fs.StringVar(&c.Namespace, "namespace", c.Namespace, "Watch only this namespace (disables ClusterIssuers); empty watches all namespaces.")
	fs.StringSliceVar(&c.Controllers, "controllers", c.Controllers, "Controllers to run: '*' for the defaults, 'name' to add one, '-name' to remove one. All controllers: "+strings.Join(defaults.AllControllers, ", "))
	fs.Var(cliflag.NewMapStringBool(&c.FeatureGates), "feature-gates", "Feature gates as key=value pairs. Known gates:\n"+strings.Join(utilfeature.DefaultFeatureGate.KnownFeatures(), "\n"))

	// Leader election.
	fs.BoolVar(&c.LeaderElectionConfig.Enabled, "leader-elect", c.LeaderElectionConfig.Enabled, "Elect a leader among controller replicas with a Lease.")
	fs.StringVar(&c.LeaderElectionConfig.Namespace, "leader-election-namespace", c.LeaderElectionConfig.Namespace, "Namespace of the leader election Lease.")
	fs.DurationVar(&c.LeaderElectionConfig.LeaseDuration, "leader-election-lease-duration", c.LeaderElectionConfig.LeaseDuration, "How long non-leaders wait after a renewal before trying to take over.")
	fs.DurationVar(&c.LeaderElectionConfig.RenewDeadline, "leader-election-renew-deadline", c.LeaderElectionConfig.RenewDeadline, "How long the leader keeps trying to renew before it gives up.")
	fs.DurationVar(&c.LeaderElectionConfig.RetryPeriod, "leader-election-retry-period", c.LeaderElectionConfig.RetryPeriod, "Wait between attempts to acquire or renew the Lease.")

	// Issuers and certificates.
	fs.BoolVar(&c.ClusterIssuerAmbientCredentials, "cluster-issuer-ambient-credentials", c.ClusterIssuerAmbientCredentials, "Let ClusterIssuers use ambient credentials (metadata services, environment).")
	fs.BoolVar(&c.IssuerAmbientCredentials, "issuer-ambient-credentials", c.IssuerAmbientCredentials, "Let Issuers use ambient credentials (metadata services, environment).")
	fs.BoolVar(&c.EnableCertificateOwnerRef, "enable-certificate-owner-ref", c.EnableCertificateOwnerRef, "Make each Certificate the owner of its Secret, so the Secret is deleted with it.")
	fs.StringSliceVar(&c.CopiedAnnotationPrefixes, "copied-annotation-prefixes", c.CopiedAnnotationPrefixes, "Annotation prefixes copied from Certificates to CertificateRequests and Orders ('-prefix' excludes one).")
	fs.DurationVar(&c.CertificateRequestMinimumBackoffDuration, "certificate-request-minimum-backoff-duration", c.CertificateRequestMinimumBackoffDuration, "First backoff after a failed CertificateRequest; it doubles with each failure.")
	fs.IntVar(&c.NumberOfConcurrentWorkers, "concurrent-workers", c.NumberOfConcurrentWorkers, "Concurrent workers of each controller.")

	// Ingress and Gateway shims.
	fs.StringSliceVar(&c.IngressShimConfig.DefaultAutoCertificateAnnotations, "auto-certificate-annotations", c.IngressShimConfig.DefaultAutoCertificateAnnotations, "Annotations by which an Ingress asks for a certificate.")
	fs.StringSliceVar(&c.IngressShimConfig.ExtraCertificateAnnotations, "extra-certificate-annotations", c.IngressShimConfig.ExtraCertificateAnnotations, "Annotations copied from an Ingress or Gateway to the Certificate the shim creates.")
	fs.StringVar(&c.IngressShimConfig.DefaultIssuerName, "default-issuer-name", c.IngressShimConfig.DefaultIssuerName, "Issuer name for Ingresses that ask for TLS without naming one.")
	fs.StringVar(&c.IngressShimConfig.DefaultIssuerKind, "default-issuer-kind", c.IngressShimConfig.DefaultIssuerKind, "Issuer kind for Ingresses that ask for TLS without naming one.")
	fs.StringVar(&c.IngressShimConfig.DefaultIssuerGroup, "default-issuer-group", c.IngressShimConfig.DefaultIssuerGroup, "Issuer group for Ingresses that ask for TLS without naming one.")
	fs.BoolVar(&c.EnableGatewayAPI, "enable-gateway-api", c.EnableGatewayAPI, "Enable the Gateway API certificate shim and HTTP-01 solver (the ExperimentalGatewayAPISupport gate must be on too).")

	// ACME.
	h := &c.ACMEHTTP01Config
	fs.StringVar(&h.SolverImage, "acme-http01-solver-image", h.SolverImage, "Image of the ACME HTTP-01 solver pods.")
	fs.StringVar(&h.SolverResourceRequestCPU, "acme-http01-solver-resource-request-cpu", h.SolverResourceRequestCPU, "CPU request of the HTTP-01 solver pods.")
	fs.StringVar(&h.SolverResourceRequestMemory, "acme-http01-solver-resource-request-memory", h.SolverResourceRequestMemory, "Memory request of the HTTP-01 solver pods.")
	fs.StringVar(&h.SolverResourceLimitsCPU, "acme-http01-solver-resource-limits-cpu", h.SolverResourceLimitsCPU, "CPU limit of the HTTP-01 solver pods.")
	fs.StringVar(&h.SolverResourceLimitsMemory, "acme-http01-solver-resource-limits-memory", h.SolverResourceLimitsMemory, "Memory limit of the HTTP-01 solver pods.")
	fs.BoolVar(&h.SolverRunAsNonRoot, "acme-http01-solver-run-as-non-root", h.SolverRunAsNonRoot, "Run the HTTP-01 solver pods as non-root.")
	fs.StringSliceVar(&h.SolverNameservers, "acme-http01-solver-nameservers", h.SolverNameservers, "host:port DNS servers for the HTTP-01 self check.")
	fs.StringSliceVar(&c.ACMEDNS01Config.RecursiveNameservers, "dns01-recursive-nameservers", c.ACMEDNS01Config.RecursiveNameservers, "host:port or https:// (DoH) resolvers for the DNS-01 self check.")
	fs.BoolVar(&c.ACMEDNS01Config.RecursiveNameserversOnly, "dns01-recursive-nameservers-only", c.ACMEDNS01Config.RecursiveNameserversOnly, "Query only the configured resolvers in the DNS-01 self check.")
	fs.DurationVar(&c.ACMEDNS01Config.CheckRetryPeriod, "dns01-check-retry-period", c.ACMEDNS01Config.CheckRetryPeriod, "Wait between ACME propagation checks (DNS-01 and HTTP-01).")
	fs.IntVar(&c.MaxConcurrentChallenges, "max-concurrent-challenges", c.MaxConcurrentChallenges, "Maximum number of ACME challenges processed at once.")

	// Servers: metrics (optionally TLS), profiler, healthz.
	fs.StringVar(&c.MetricsListenAddress, "metrics-listen-address", c.MetricsListenAddress, "host:port of the metrics server.")
	t := &c.MetricsTLSConfig
	fs.StringVar(&t.Filesystem.CertFile, "metrics-tls-cert-file", t.Filesystem.CertFile, "TLS certificate file of the metrics server.")
	fs.StringVar(&t.Filesystem.KeyFile, "metrics-tls-private-key-file", t.Filesystem.KeyFile, "TLS private key file of the metrics server.")
	fs.DurationVar(&t.Dynamic.LeafDuration, "metrics-dynamic-serving-leaf-duration", t.Dynamic.LeafDuration, "Lifetime of the dynamically issued metrics serving certificates.")
	fs.StringVar(&t.Dynamic.SecretNamespace, "metrics-dynamic-serving-ca-secret-namespace", t.Dynamic.SecretNamespace, "Namespace of the Secret holding the dynamic serving CA.")
	fs.StringVar(&t.Dynamic.SecretName, "metrics-dynamic-serving-ca-secret-name", t.Dynamic.SecretName, "Name of the Secret holding the dynamic serving CA.")
	fs.StringSliceVar(&t.Dynamic.DNSNames, "metrics-dynamic-serving-dns-names", t.Dynamic.DNSNames, "DNS names of the dynamic serving certificates.")
	fs.StringSliceVar(&t.CipherSuites, "metrics-tls-cipher-suites", t.CipherSuites, "TLS cipher suites of the metrics server: "+strings.Join(cliflag.TLSCipherPossibleValues(), ","))
	fs.StringVar(&t.MinTLSVersion, "metrics-tls-min-version", t.MinTLSVersion, "Minimum TLS version of the metrics server: "+strings.Join(cliflag.TLSPossibleVersions(), ", "))
	fs.BoolVar(&c.EnablePprof, "enable-profiling", c.EnablePprof, "Serve Go pprof endpoints on --profiler-address.")
	fs.StringVar(&c.PprofAddress, "profiler-address", c.PprofAddress, "host:port of the profiler (keep it on loopback).")
	fs.StringVar(&c.HealthzListenAddress, "internal-healthz-listen-address", c.HealthzListenAddress, "host:port of the /livez server.")
	fs.DurationVar(&c.LeaderElectionConfig.HealthzTimeout, "internal-healthz-leader-election-timeout", c.LeaderElectionConfig.HealthzTimeout, "How long after the Lease expires /livez still reports healthy.")
	_ = fs.MarkHidden("internal-healthz-listen-address")
	_ = fs.MarkHidden("internal-healthz-leader-election-timeout")

	logf.AddFlags(&c.Logging, fs)
}
