package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// The message set every MTA under test gets: message seq goes from
// reminders@clinic.example to p<seq>@d<seq mod domains>.example with a
// plain-text body of about BodyBytes.
const (
	benchFrom    = "reminders@clinic.example"
	benchSubject = "Appointment reminder"
)

func benchRcpt(seq, domains int) string { return fmt.Sprintf("p%d@d%d.example", seq, seq%domains) }

func benchBody(size int) string {
	line := "Your appointment at the clinic is tomorrow at 9:00. Please bring your insurance card.\n"
	return strings.Repeat(line, size/len(line)+1)[:size]
}

// rawMessage is message seq as RFC 5322 text with CRLF line ends (RFC
// 5322 §2.1), for SMTP submission.
func rawMessage(seq, domains int, body string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: Clinic <%s>\r\nTo: <%s>\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <bench-%d@clinic.example>\r\n",
		benchFrom, benchRcpt(seq, domains), benchSubject, time.Now().UTC().Format(time.RFC1123Z), seq)
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
	b.WriteString(strings.ReplaceAll(body, "\n", "\r\n"))
	return b.Bytes()
}

// apiMessage is message seq as the API's MessageRequest.
type apiMessage struct {
	From    string   `json:"from"`
	To      []string `json:"to"`
	Subject string   `json:"subject"`
	Text    string   `json:"text"`
}

func newAPIMessage(seq, domains int, body string) apiMessage {
	return apiMessage{From: "Clinic <" + benchFrom + ">", To: []string{benchRcpt(seq, domains)}, Subject: benchSubject, Text: body}
}

// accepted records when each message was accepted (its 202, or the 250
// after DATA), and each submission's latency.
type accepted struct {
	at  []time.Time
	mu  sync.Mutex
	lat []time.Duration
}

func newAccepted(n int) *accepted { return &accepted{at: make([]time.Time, n)} }

func (a *accepted) note(lat time.Duration) {
	a.mu.Lock()
	a.lat = append(a.lat, lat)
	a.mu.Unlock()
}

// percentiles returns the p50 and p99 of ds (sorted in place).
func percentiles(ds []time.Duration) (p50, p99 time.Duration) {
	if len(ds) == 0 {
		return 0, 0
	}
	slices.Sort(ds)
	return ds[(len(ds)-1)/2], ds[(len(ds)-1)*99/100]
}

// apiPoster posts to the Sealpost API with the bootstrap client's key.
type apiPoster struct {
	client *http.Client
	srv    *Server
}

func newAPIPoster(srv *Server, conns int) *apiPoster {
	tr := &http.Transport{MaxIdleConnsPerHost: conns + 1, MaxConnsPerHost: conns + 1, IdleConnTimeout: time.Minute}
	return &apiPoster{client: &http.Client{Transport: tr, Timeout: 5 * time.Minute}, srv: srv}
}

func (p *apiPoster) post(ctx context.Context, path string, body any) (int, []byte, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return 0, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.srv.BaseURL+path, bytes.NewReader(b))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("X-API-Key", p.srv.APIKey())
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, out, err
}

// postBatches sends messages 0..n-1 through POST /v1/messages/batch,
// size per request, from clients concurrent clients, and records each
// message's acceptance. Every item must come back 202.
func (p *apiPoster) postBatches(ctx context.Context, n, size, clients, domains int, body string, acc *accepted, progress func(done int)) error {
	var next, done atomic.Int64
	return forEachClient(clients, func() error {
		for {
			first := int(next.Add(int64(size))) - size
			if first >= n || ctx.Err() != nil {
				return ctx.Err()
			}
			last := min(first+size, n)
			msgs := make([]apiMessage, 0, last-first)
			for seq := first; seq < last; seq++ {
				msgs = append(msgs, newAPIMessage(seq, domains, body))
			}
			t0 := time.Now()
			status, out, err := p.post(ctx, "/v1/messages/batch", map[string]any{"messages": msgs})
			if err != nil {
				return fmt.Errorf("POST /v1/messages/batch: %w", err)
			}
			now := time.Now()
			if status != http.StatusOK {
				return fmt.Errorf("POST /v1/messages/batch: %d %.300s", status, out)
			}
			var res struct {
				Data []struct {
					Status int `json:"status"`
				} `json:"data"`
			}
			if err := json.Unmarshal(out, &res); err != nil || len(res.Data) != len(msgs) {
				return fmt.Errorf("POST /v1/messages/batch: unexpected answer %.300s", out)
			}
			for i, item := range res.Data {
				if item.Status != http.StatusAccepted {
					return fmt.Errorf("message %d: status %d in batch answer", first+i, item.Status)
				}
				acc.at[first+i] = now
			}
			acc.note(now.Sub(t0))
			if progress != nil {
				progress(int(done.Add(int64(len(msgs)))))
			}
		}
	})
}

// postSingles sends messages 0..n-1 one per POST /v1/messages from
// clients concurrent clients; each must be answered 202.
func (p *apiPoster) postSingles(ctx context.Context, n, clients, domains int, body string, acc *accepted, progress func(done int)) error {
	var next atomic.Int64
	return forEachClient(clients, func() error {
		for {
			seq := int(next.Add(1)) - 1
			if seq >= n || ctx.Err() != nil {
				return ctx.Err()
			}
			t0 := time.Now()
			status, out, err := p.post(ctx, "/v1/messages", newAPIMessage(seq, domains, body))
			if err != nil {
				return fmt.Errorf("POST /v1/messages: %w", err)
			}
			now := time.Now()
			if status != http.StatusAccepted {
				return fmt.Errorf("POST /v1/messages: %d %.300s", status, out)
			}
			acc.at[seq] = now
			acc.note(now.Sub(t0))
			if progress != nil {
				progress(seq + 1)
			}
		}
	})
}

// smtpSubmitter sends the message set over SMTP, each client keeping one
// connection for all its messages (RSET-free: MAIL, RCPT, DATA again on
// the same session, RFC 5321 §3.3).
type smtpSubmitter struct {
	addr     string
	user     string // AUTH PLAIN (RFC 4616) when set
	password string
}

func (s smtpSubmitter) submit(ctx context.Context, n, clients, domains int, body string, acc *accepted, progress func(done int)) error {
	var next atomic.Int64
	return forEachClient(clients, func() error {
		c, err := s.dial()
		if err != nil {
			return err
		}
		defer func() { _ = c.Quit() }()
		for {
			seq := int(next.Add(1)) - 1
			if seq >= n || ctx.Err() != nil {
				return ctx.Err()
			}
			raw := rawMessage(seq, domains, body)
			t0 := time.Now()
			if err := sendOne(c, benchFrom, benchRcpt(seq, domains), raw); err != nil {
				return fmt.Errorf("SMTP submission of message %d to %s: %w", seq, s.addr, err)
			}
			now := time.Now()
			acc.at[seq] = now
			acc.note(now.Sub(t0))
			if progress != nil {
				progress(seq + 1)
			}
		}
	})
}

func (s smtpSubmitter) dial() (*smtp.Client, error) {
	conn, err := net.DialTimeout("tcp", s.addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	c := smtp.NewClient(conn)
	if err := c.Hello("loadgen.clinic.example"); err != nil {
		c.Close()
		return nil, err
	}
	if s.user != "" {
		if err := c.Auth(sasl.NewPlainClient("", s.user, s.password)); err != nil {
			c.Close()
			return nil, fmt.Errorf("AUTH PLAIN: %w", err)
		}
	}
	return c, nil
}

func sendOne(c *smtp.Client, from, rcpt string, raw []byte) error {
	if err := c.Mail(from, nil); err != nil {
		return err
	}
	if err := c.Rcpt(rcpt, nil); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(raw); err != nil {
		return err
	}
	return w.Close()
}

// forEachClient runs fn in clients goroutines and returns the first error.
func forEachClient(clients int, fn func() error) error {
	var wg sync.WaitGroup
	errs := make([]error, max(clients, 1))
	for i := range errs {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = fn() }()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// throttled wraps a progress printer so it prints at most once a second
// (and always the last step).
func throttled(name string, total int, p Progress) func(done int) {
	if p == nil {
		return nil
	}
	var mu sync.Mutex
	var last time.Time
	return func(done int) {
		mu.Lock()
		defer mu.Unlock()
		if done < total && time.Since(last) < time.Second {
			return
		}
		last = time.Now()
		p(name, done, total)
	}
}
