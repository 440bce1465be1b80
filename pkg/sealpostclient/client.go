package sealpostclient

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Session is an open HMAC session: its id and the secret that signs.
type Session struct {
	ID        string
	Secret    []byte
	ExpiresAt time.Time
	// Now is the clock used for timestamps (default time.Now).
	Now func() time.Time
}

// Open opens a session at baseURL (e.g. "https://sealpost.example") with
// an API client's credentials, sent once in the X-API-Key header.
func Open(ctx context.Context, hc *http.Client, baseURL, clientID, clientSecret string) (*Session, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(baseURL, "/")+"/v1/sessions", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("X-API-Key", clientID+":"+clientSecret)
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("open session: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusCreated {
		return nil, fmt.Errorf("open session: HTTP %d", resp.StatusCode)
	}
	var out struct {
		ID        string    `json:"session_id"`
		Secret    string    `json:"session_secret"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	if err := json.Unmarshal(body, &out); err != nil || out.ID == "" || out.Secret == "" {
		return nil, fmt.Errorf("open session: unexpected answer")
	}
	return &Session{ID: out.ID, Secret: []byte(out.Secret), ExpiresAt: out.ExpiresAt}, nil
}

// Sign adds the Authorization header to r, signing its method, path,
// query, Host and Content-Type, and body. The body is read and put back.
func (s *Session) Sign(r *http.Request) error {
	body, err := ReadBody(r)
	if err != nil {
		return fmt.Errorf("sign: read body: %w", err)
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	var n [16]byte
	if _, err := rand.Read(n[:]); err != nil {
		return err
	}
	a := Authorization{
		Session:       s.ID,
		Timestamp:     now().Unix(),
		Nonce:         hex.EncodeToString(n[:]),
		SignedHeaders: DefaultSignedHeaders,
	}
	a.Signature = Signature(s.Secret, CanonicalString(r, body, a.SignedHeaders, a.Timestamp, a.Nonce))
	r.Header.Set("Authorization", a.String())
	return nil
}

// Transport signs every request with Session before Base sends it.
type Transport struct {
	Session *Session
	// Base sends the signed request (default http.DefaultTransport).
	Base http.RoundTripper
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context()) // a RoundTripper must not modify its request
	if r.Body != nil && r.GetBody != nil {
		body, err := r.GetBody()
		if err != nil {
			return nil, err
		}
		r.Body = body
	}
	if err := t.Session.Sign(r); err != nil {
		return nil, err
	}
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	return base.RoundTrip(r)
}
