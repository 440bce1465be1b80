package cli_test

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	netmail "net/mail"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/delivery/smtptest"
	"github.com/sealpost/sealpost/internal/resolve/dnstest"
	"github.com/sealpost/sealpost/internal/wkd/wkdtest"
)

// A recipient whose key is only in its domain's Web Key Directory gets
// PGP/MIME once the account enables WKD, and GnuPG opens it.
func TestWKDKeyEncryptsThroughTheServer(t *testing.T) {
	const pat = "pat@patient.example"
	g := wkdtest.NewGnuPG(t)
	fpr := g.GenKey("Pat <" + pat + ">")
	cert, certPEM, err := smtptest.Certificate("openpgpkey.patient.example")
	if err != nil {
		t.Fatal(err)
	}
	directory := wkdtest.Start(cert)
	t.Cleanup(directory.Close)
	directory.Publish(wkdtest.Advanced, pat, g.Export(fpr, false))
	const sam = "sam@patient.example"
	directory.Publish(wkdtest.Advanced, sam, g.Export(g.GenKey("Sam <"+sam+">"), false))
	ca := filepath.Join(t.TempDir(), "wkd-ca.pem")
	if err := os.WriteFile(ca, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	w := serveSecureDelivery(t, func(dns *dnstest.Server) []string {
		if err := dns.Add("openpgpkey.patient.example. 60 IN A 127.0.0.1"); err != nil {
			t.Fatal(err)
		}
		return []string{"SEALPOST_SECURELINE_WKD_CA_FILE=" + ca, "SEALPOST_SECURELINE_WKD_PORT=" + strconv.Itoa(directory.Port),
			"SEALPOST_SECURELINE_WKD_ALLOW_PRIVATE_NETWORKS=true"}
	})

	// Off by default: the directory is not asked and there is no PGP.
	preflight := `{"from":"results@clinic.example","recipients":["` + pat + `"],"contains_phi":true}`
	if method, _ := w.preflight(t, preflight); method == "pgp" || len(directory.Requests()) != 0 {
		t.Fatalf("WKD off: method %s, %d directory requests", method, len(directory.Requests()))
	}
	if status, _, body := w.api.call("PUT", "/v1/secureline/settings", w.owner, "application/json",
		`{"mode":"forced_tls","subject_tag":"[secure]","wkd_enabled":true}`); status != 200 {
		t.Fatalf("enable WKD: %d %s", status, body)
	}
	if method, reasons := w.preflight(t, preflight); method != "pgp" || !strings.Contains(reasons, "Web Key Directory") {
		t.Fatalf("preflight with WKD: %s: %s", method, reasons)
	}

	r := w.send(t, pat)
	if r.Encryption == nil || r.Encryption.Method != "pgp" || !strings.Contains(strings.Join(r.Encryption.Reasons, "; "), "Web Key Directory") {
		t.Fatalf("recipient: %+v", r)
	}
	got := w.received(t, pat)
	if !bytes.Contains(got.Data, []byte("multipart/encrypted")) || bytes.Contains(got.Data, []byte("HbA1c")) {
		t.Fatalf("the copy is not encrypted:\n%s", got.Data)
	}
	if plain := g.Decrypt(encryptedPart(t, got.Data)); !bytes.Contains(plain, []byte("HbA1c")) {
		t.Errorf("gpg --decrypt gave no text:\n%s", plain)
	}
	// Preflight, acceptance and delivery shared one fetch.
	if n := len(directory.Requests()); n != 1 {
		t.Errorf("the directory was asked %d times, want once", n)
	}
	// Acceptance never waits on the directory: the first message to an
	// address the cache does not know is decided without its key (TLS
	// here, never clear text) and the key is fetched in the background,
	// so a later message gets PGP.
	first := w.send(t, sam)
	if first.Encryption == nil || first.Encryption.Method == "pgp" {
		t.Fatalf("first message to an uncached address: %+v", first.Encryption)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := w.send(t, sam)
		if r.Encryption != nil && r.Encryption.Method == "pgp" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the background fetch never filled the cache: %+v", r.Encryption)
		}
		time.Sleep(50 * time.Millisecond)
	}
	resp, err := http.Get(w.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	metrics, _ := io.ReadAll(resp.Body)
	if !bytes.Contains(metrics, []byte(`sealpost_wkd_lookups_total{result="hit"} 2`)) {
		t.Errorf("no WKD hit in the metrics:\n%s", metrics)
	}
}

// preflight returns the first recipient's method and reasons.
func (w secureDeliveryWorld) preflight(t *testing.T, body string) (method, reasons string) {
	t.Helper()
	status, _, out := w.api.call("POST", "/v1/secureline/preflight", w.owner, "application/json", body)
	var res struct {
		Recipients []struct {
			Method  string   `json:"method"`
			Reasons []string `json:"reasons"`
		} `json:"recipients"`
	}
	if status != 200 || json.Unmarshal(out, &res) != nil || len(res.Recipients) != 1 {
		t.Fatalf("preflight: %d %s", status, out)
	}
	return res.Recipients[0].Method, strings.Join(res.Recipients[0].Reasons, "; ")
}

// encryptedPart returns the armored OpenPGP message of a PGP/MIME
// message (RFC 3156 §4: the second part, application/octet-stream).
func encryptedPart(t *testing.T, msg []byte) []byte {
	t.Helper()
	m, err := netmail.ReadMessage(bytes.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	_, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil {
		t.Fatal(err)
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err != nil {
			t.Fatalf("no encrypted part: %v", err)
		}
		if strings.HasPrefix(p.Header.Get("Content-Type"), "application/octet-stream") {
			b, err := io.ReadAll(p)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
	}
}
