// x509verify checks a certificate chain with Go's crypto/x509 (what Go programs such as
// istiod, cert-manager and SPIRE clients use), standard library only.
//
//	x509verify -roots root.pem -cert chain.pem [-intermediates more.pem] [-uri spiffe://...] [-usage server|client|any]
//
// -cert holds the leaf first, then any intermediates. On success it prints one JSON
// line (subject, URIs, DNS names, chain subjects, not_after) and exits 0; otherwise it
// prints the reason on stderr and exits 1.
package main

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"
)

func readCerts(path string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		certs = append(certs, cert)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%s: no CERTIFICATE block", path)
	}
	return certs, nil
}

func main() {
	rootsPath := flag.String("roots", "", "PEM file of trust anchors")
	certPath := flag.String("cert", "", "PEM file: leaf first, then intermediates")
	moreIntermediates := flag.String("intermediates", "", "optional PEM file of more intermediates")
	wantURI := flag.String("uri", "", "optional URI SAN the leaf must carry")
	usage := flag.String("usage", "any", "extended key usage to require: server, client or any")
	flag.Parse()
	if err := run(*rootsPath, *certPath, *moreIntermediates, *wantURI, *usage); err != nil {
		fmt.Fprintln(os.Stderr, "x509verify:", err)
		os.Exit(1)
	}
}

func run(rootsPath, certPath, morePath, wantURI, usage string) error {
	if rootsPath == "" || certPath == "" {
		return errors.New("-roots and -cert are required")
	}
	roots, err := readCerts(rootsPath)
	if err != nil {
		return err
	}
	chain, err := readCerts(certPath)
	if err != nil {
		return err
	}
	rootPool := x509.NewCertPool()
	for _, c := range roots {
		rootPool.AddCert(c)
	}
	intermediates := x509.NewCertPool()
	for _, c := range chain[1:] {
		intermediates.AddCert(c)
	}
	if morePath != "" {
		more, err := readCerts(morePath)
		if err != nil {
			return err
		}
		for _, c := range more {
			intermediates.AddCert(c)
		}
	}
	usages := map[string][]x509.ExtKeyUsage{
		"server": {x509.ExtKeyUsageServerAuth},
		"client": {x509.ExtKeyUsageClientAuth},
		"any":    {x509.ExtKeyUsageAny},
	}[usage]
	if usages == nil {
		return fmt.Errorf("-usage must be server, client or any, not %q", usage)
	}
	leaf := chain[0]
	chains, err := leaf.Verify(x509.VerifyOptions{
		Roots:         rootPool,
		Intermediates: intermediates,
		CurrentTime:   time.Now(),
		KeyUsages:     usages,
	})
	if err != nil {
		return fmt.Errorf("%s does not verify against %s: %w", certPath, rootsPath, err)
	}
	var uris []string
	for _, u := range leaf.URIs {
		uris = append(uris, u.String())
	}
	if wantURI != "" {
		found := false
		for _, u := range uris {
			found = found || u == wantURI
		}
		if !found {
			return fmt.Errorf("%s carries URIs %v, not %s", certPath, uris, wantURI)
		}
	}
	var path []string
	for _, c := range chains[0] {
		path = append(path, c.Subject.String())
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]any{
		"subject":          leaf.Subject.String(),
		"uris":             uris,
		"dns_names":        leaf.DNSNames,
		"chain":            path,
		"not_after":        leaf.NotAfter.UTC().Format(time.RFC3339),
		"lifetime_seconds": leaf.NotAfter.Sub(leaf.NotBefore).Seconds(),
	})
}
