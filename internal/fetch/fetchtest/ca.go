package fetchtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"
)

// CA is a certificate authority made up for one run of the emulators, so
// that clients elsewhere (containers, other machines) can reach them over
// HTTPS: injector sends credentials in clear text to loopback only. Its key
// lives in memory and is gone when the process exits.
type CA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	// PEM is the CA certificate, what clients trust (INJECTOR_CA_FILE).
	PEM []byte
}

// validity of the CA and the certificates it issues: long enough for any
// dev session, short enough that a copied CA file soon means nothing.
const validity = 30 * 24 * time.Hour

// NewCA generates a CA (ECDSA P-256) valid from an hour ago, to allow for
// clock skew, for 30 days.
func NewCA() (*CA, error) {
	tmpl := &x509.Certificate{
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	cert, key, err := issue(tmpl, nil, nil, func(serial *big.Int) string { return "injector dev CA " + serial.Text(16)[:8] })
	if err != nil {
		return nil, fmt.Errorf("fetchtest: CA certificate: %w", err)
	}
	return &CA{cert: cert, key: key, PEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})}, nil
}

// ServerTLS returns a server configuration (TLS 1.2 or later) with a
// certificate for hosts, IP addresses or DNS names, signed by the CA.
func (ca *CA) ServerTLS(hosts ...string) (*tls.Config, error) {
	if len(hosts) == 0 {
		return nil, errors.New("fetchtest: a server certificate needs at least one host")
	}
	tmpl := &x509.Certificate{
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	cert, key, err := issue(tmpl, ca.cert, ca.key, func(*big.Int) string { return hosts[0] })
	if err != nil {
		return nil, fmt.Errorf("fetchtest: server certificate: %w", err)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{cert.Raw, ca.cert.Raw}, PrivateKey: key}},
		MinVersion:   tls.VersionTLS12,
	}, nil
}

// issue fills in tmpl's serial number, name and validity, generates its
// key and signs it with parentKey (nil parent: self-signed).
func issue(tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, name func(*big.Int) string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	// A random serial of at least 2^64: 17 hex digits or more.
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	tmpl.SerialNumber = serial.Add(serial, new(big.Int).Lsh(big.NewInt(1), 64))
	tmpl.Subject = pkix.Name{CommonName: name(tmpl.SerialNumber)}
	now := time.Now()
	tmpl.NotBefore, tmpl.NotAfter = now.Add(-time.Hour), now.Add(validity)
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, err
}

// Pool returns a certificate pool that trusts the CA, for clients.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}
