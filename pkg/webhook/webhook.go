// Package webhook signs and verifies Sealpost webhook requests. Sealpost
// signs every webhook POST with the endpoint's secret and sends the result
// in the Sealpost-Signature header:
//
//	Sealpost-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>
//
// where the HMAC key is the endpoint's secret (the whole "whsec_..."
// string, as bytes) and the signed message is the decimal timestamp, a
// full stop, and the raw request body: "<t>.<body>". During a secret
// rotation the header carries one v1 entry per valid secret; a receiver
// accepts the request when any of them matches its secret.
//
// Receivers should verify the raw body before parsing it, refuse
// timestamps more than DefaultTolerance away from their clock (replays),
// and deduplicate on the event id (the Sealpost-Event-Id header and the
// payload's "id"), which never changes when a delivery is retried.
//
// This package has no dependency on the rest of Sealpost, so receivers
// written in Go can import it alone.
package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"
)

// Header names Sealpost sets on every webhook request.
const (
	SignatureHeader = "Sealpost-Signature"
	EventIDHeader   = "Sealpost-Event-Id"
	EventTypeHeader = "Sealpost-Event-Type"
)

// DefaultTolerance is how far a signature's timestamp may be from the
// receiver's clock. Sealpost signs each attempt when it sends it, so a
// retried event carries a fresh timestamp.
const DefaultTolerance = 5 * time.Minute

// maxHeader bounds the header Verify parses.
const maxHeader = 4096

// Errors Verify returns.
var (
	// ErrMalformedHeader: the header is missing or not "t=...,v1=...".
	ErrMalformedHeader = errors.New("webhook: malformed Sealpost-Signature header")
	// ErrTimestamp: the timestamp is outside the tolerance.
	ErrTimestamp = errors.New("webhook: signature timestamp outside the tolerance")
	// ErrMismatch: no v1 signature matches the secret and body.
	ErrMismatch = errors.New("webhook: no signature matches")
)

// Signature returns the hex HMAC-SHA256 of "<t>.<body>" keyed by secret,
// the v1 value of the header.
func Signature(secret string, t int64, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(strconv.FormatInt(t, 10)))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

// Sign returns the Sealpost-Signature header value for body at time t,
// with one v1 entry per secret (the current one first).
func Sign(body []byte, t time.Time, secrets ...string) string {
	ts := t.Unix()
	var b strings.Builder
	b.WriteString("t=")
	b.WriteString(strconv.FormatInt(ts, 10))
	for _, s := range secrets {
		b.WriteString(",v1=")
		b.WriteString(Signature(s, ts, body))
	}
	return b.String()
}

// Parsed is a parsed Sealpost-Signature header.
type Parsed struct {
	Timestamp  int64
	Signatures []string // the v1 values, lower-case hex
}

// Parse reads a Sealpost-Signature header. Unknown keys (future schemes)
// are ignored; t and at least one v1 are required.
func Parse(header string) (Parsed, error) {
	var p Parsed
	if header == "" || len(header) > maxHeader {
		return p, ErrMalformedHeader
	}
	seenT := false
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return Parsed{}, ErrMalformedHeader
		}
		switch k {
		case "t":
			ts, err := strconv.ParseInt(v, 10, 64)
			if err != nil || seenT || ts <= 0 {
				return Parsed{}, ErrMalformedHeader
			}
			p.Timestamp, seenT = ts, true
		case "v1":
			if len(v) != sha256.Size*2 {
				continue // cannot match; another entry may
			}
			p.Signatures = append(p.Signatures, strings.ToLower(v))
		}
	}
	if !seenT || len(p.Signatures) == 0 {
		return Parsed{}, ErrMalformedHeader
	}
	return p, nil
}

// Verify checks header against the raw body and secret at the current
// time with tolerance (zero means DefaultTolerance).
func Verify(body []byte, header, secret string, tolerance time.Duration) error {
	return VerifyAt(body, header, secret, tolerance, time.Now())
}

// VerifyAt is Verify with the receiver's clock given.
func VerifyAt(body []byte, header, secret string, tolerance time.Duration, now time.Time) error {
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	p, err := Parse(header)
	if err != nil {
		return err
	}
	skew := now.Sub(time.Unix(p.Timestamp, 0))
	if skew > tolerance || skew < -tolerance {
		return ErrTimestamp
	}
	want := []byte(Signature(secret, p.Timestamp, body))
	for _, sig := range p.Signatures {
		// Constant time, so the comparison leaks nothing about the
		// expected value.
		if hmac.Equal([]byte(sig), want) {
			return nil
		}
	}
	return ErrMismatch
}
