// istio-csr-client asks istiod's CA for a workload certificate the way an Istio sidecar
// (pilot-agent) does: a fresh EC P-256 key, a CSR carrying the workload's SPIFFE ID, and
// a CreateCertificate call of the IstioCertificateService over TLS on istiod's port 15012,
// authenticated with the workload's Kubernetes service-account token (audience istio-ca).
//
//	istio-csr-client -addr 127.201.0.4:15012 -root root.pem -token token \
//	    -spiffe spiffe://cluster.local/ns/shop/sa/web -out dir [-ttl 1h]
//
// It writes dir/key.pem, dir/cert-chain.pem (leaf first, as istiod answers) and
// dir/root-cert.pem (the last certificate of the answer), then prints one JSON line.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	securityapi "istio.io/api/security/v1alpha1"
)

func main() {
	addr := flag.String("addr", "", "istiod's secure gRPC address (host:port)")
	serverName := flag.String("server-name", "istiod.istio-system.svc", "TLS server name of istiod")
	rootPath := flag.String("root", "", "PEM roots that istiod's serving certificate must chain to")
	tokenPath := flag.String("token", "", "file with the workload's service-account token")
	spiffeID := flag.String("spiffe", "", "SPIFFE ID to put in the CSR")
	outDir := flag.String("out", "", "directory for key.pem, cert-chain.pem, root-cert.pem")
	ttl := flag.Duration("ttl", time.Hour, "requested certificate lifetime")
	clusterID := flag.String("cluster-id", "Kubernetes", "ClusterID metadata (istiod's CLUSTER_ID)")
	flag.Parse()
	if err := run(*addr, *serverName, *rootPath, *tokenPath, *spiffeID, *outDir, *clusterID, *ttl); err != nil {
		fmt.Fprintln(os.Stderr, "istio-csr-client:", err)
		os.Exit(1)
	}
}

func run(addr, serverName, rootPath, tokenPath, spiffeID, outDir, clusterID string, ttl time.Duration) error {
	if addr == "" || rootPath == "" || tokenPath == "" || spiffeID == "" || outDir == "" {
		return errors.New("-addr, -root, -token, -spiffe and -out are required")
	}
	rootPEM, err := os.ReadFile(rootPath)
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(rootPEM) {
		return fmt.Errorf("%s holds no certificate", rootPath)
	}
	token, err := os.ReadFile(tokenPath)
	if err != nil {
		return err
	}
	id, err := url.Parse(spiffeID)
	if err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	csrDER, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{Organization: []string{"zerotrust.mtls consumer test"}},
		URIs:    []*url.URL{id},
	}, key)
	if err != nil {
		return err
	}
	csrPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csrDER})

	creds := credentials.NewTLS(&tls.Config{RootCAs: roots, ServerName: serverName, MinVersion: tls.VersionTLS12})
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx,
		"authorization", "Bearer "+strings.TrimSpace(string(token)), "ClusterID", clusterID)
	answer, err := securityapi.NewIstioCertificateServiceClient(conn).CreateCertificate(ctx,
		&securityapi.IstioCertificateRequest{Csr: string(csrPEM), ValidityDuration: int64(ttl.Seconds())})
	if err != nil {
		return fmt.Errorf("CreateCertificate at %s: %w", addr, err)
	}
	chain := answer.GetCertChain()
	if len(chain) < 2 {
		return fmt.Errorf("istiod answered %d certificates, expected the leaf and its chain", len(chain))
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(outDir, 0o700); err != nil {
		return err
	}
	var chainPEM strings.Builder
	for _, c := range chain {
		chainPEM.WriteString(strings.TrimSpace(c) + "\n")
	}
	files := map[string][]byte{
		"key.pem":        pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		"cert-chain.pem": []byte(chainPEM.String()),
		"root-cert.pem":  []byte(strings.TrimSpace(chain[len(chain)-1]) + "\n"),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(outDir, name), data, 0o600); err != nil {
			return err
		}
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]any{"certificates": len(chain), "out": outDir})
}
