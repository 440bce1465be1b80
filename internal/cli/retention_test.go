package cli_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/store"
)

type retentionAnswer struct {
	MessageBodyDays   int        `json:"message_body_days"`
	PortalMessageDays int        `json:"portal_message_days"`
	QuarantineDays    int        `json:"quarantine_days"`
	UpdatedAt         *time.Time `json:"updated_at"`
}

type retentionProblem struct {
	Type   string `json:"type"`
	Errors []struct {
		Field string `json:"field"`
	} `json:"errors"`
}

func TestRetentionPolicyRefusesBadInput(t *testing.T) {
	srv := serveBootstrapped(t)
	api, owner := srv.api, srv.owner
	status, _, body := api.call("GET", "/v1/retention-policy", owner, "", "")
	var p retentionAnswer
	if status != 200 || json.Unmarshal(body, &p) != nil || p.MessageBodyDays != 30 || p.PortalMessageDays != 30 ||
		p.QuarantineDays != 30 || p.UpdatedAt != nil || !strings.Contains(string(body), `"updated_at":null`) {
		t.Fatalf("default policy: %d %s", status, body)
	}
	for _, tc := range []struct {
		name, contentType, body string
		status                  int
		typ, field              string
	}{
		{"an unknown field is refused", "application/json",
			`{"message_body_days":30,"portal_message_days":30,"quarantine_days":30,"attachments_days":5}`, 400, "unknown-field", ""},
		{"a missing period is refused", "application/json", `{"message_body_days":30,"portal_message_days":30}`, 422, "validation", "quarantine_days"},
		{"zero days are refused", "application/json",
			`{"message_body_days":0,"portal_message_days":30,"quarantine_days":30}`, 422, "validation", "message_body_days"},
		{"negative days are refused", "application/json",
			`{"message_body_days":30,"portal_message_days":-3,"quarantine_days":30}`, 422, "validation", "portal_message_days"},
		{"more than ten years is refused", "application/json",
			`{"message_body_days":30,"portal_message_days":30,"quarantine_days":3651}`, 422, "validation", "quarantine_days"},
		{"fractional days are refused", "application/json",
			`{"message_body_days":1.5,"portal_message_days":30,"quarantine_days":30}`, 422, "validation", "message_body_days"},
		{"days as a string are refused", "application/json",
			`{"message_body_days":"30","portal_message_days":30,"quarantine_days":30}`, 422, "validation", "message_body_days"},
		{"a number beyond any int is refused", "application/json",
			`{"message_body_days":1e40,"portal_message_days":30,"quarantine_days":30}`, 422, "validation", "message_body_days"},
		{"a body that is not JSON is refused", "text/plain", `message_body_days=30`, 415, "unsupported-media-type", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, h, body := api.call("PUT", "/v1/retention-policy", owner, tc.contentType, tc.body)
			var prob retentionProblem
			if status != tc.status || json.Unmarshal(body, &prob) != nil || prob.Type != "urn:sealpost:problem:"+tc.typ ||
				!strings.HasPrefix(h.Get("Content-Type"), "application/problem+json") {
				t.Fatalf("PUT %s: %d %s", tc.body, status, body)
			}
			if tc.field != "" && (len(prob.Errors) != 1 || prob.Errors[0].Field != tc.field) {
				t.Fatalf("PUT %s: errors %+v, want one naming %s", tc.body, prob.Errors, tc.field)
			}
		})
	}
	status, _, body = api.call("GET", "/v1/retention-policy", owner, "", "")
	if status != 200 || !strings.Contains(string(body), `"updated_at":null`) {
		t.Fatalf("a refused PUT changed the policy: %s", body)
	}
}

func TestRetentionShredsDeliveredBodiesThroughTheServer(t *testing.T) {
	w := serveWithMail(t)
	verifiedSender(t, w)
	api, owner := w.api, w.owner

	status, _, body := api.call("PUT", "/v1/retention-policy", owner, "application/json",
		`{"message_body_days":1,"portal_message_days":14,"quarantine_days":90}`)
	var p retentionAnswer
	if status != 200 || json.Unmarshal(body, &p) != nil || p.MessageBodyDays != 1 || p.UpdatedAt == nil {
		t.Fatalf("set policy: %d %s", status, body)
	}
	if code, out, errOut := run(t, w.env, "admin", "retention", "show"); code != 0 || !strings.Contains(out, "message body days: 1\n") ||
		!strings.Contains(out, "quarantine days: 90\n") {
		t.Fatalf("admin retention show: %d %s %s", code, out, errOut)
	}

	delivered := sendJSON(t, w, `{"from":"results@clinic.example","to":["pat@patient.example"],"subject":"Your results","text":"HbA1c 6.1%"}`)
	waitForStatus(t, w, delivered, "delivered")
	scheduled := sendJSON(t, w, `{"from":"results@clinic.example","to":["kim@patient.example"],"text":"Reminder",
		"send_at":"`+time.Now().UTC().Add(72*time.Hour).Format(time.RFC3339)+`"}`)
	if m := getMessage(t, w, delivered); !m.BodyRetained || m.BodyShreddedAt != nil {
		t.Fatalf("a fresh message says its body is gone: %+v", m)
	}

	// Two days pass for both messages (the database is shared with the
	// running server, as another node's would be).
	db, err := store.Open(context.Background(), "sqlite:"+filepath.Join(envValue(w.env, "SEALPOST_DATA_DIR"), "sealpost.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	twoDays := (48 * time.Hour).Microseconds()
	for _, q := range []string{"UPDATE messages SET created_at = created_at - $1",
		"UPDATE message_recipients SET updated_at = updated_at - $1"} {
		if _, err := db.Writer().Exec(context.Background(), q, twoDays); err != nil {
			t.Fatal(err)
		}
	}

	code, out, errOut := run(t, w.env, "admin", "retention", "sweep")
	if code != 0 || !strings.Contains(out, "message bodies shredded: 1\n") {
		t.Fatalf("admin retention sweep: %d %s %s", code, out, errOut)
	}
	m := getMessage(t, w, delivered)
	if m.BodyRetained || m.BodyShreddedAt == nil || m.Status != "delivered" || len(m.Recipients) != 1 || m.Recipients[0].State != "delivered" {
		t.Fatalf("the shredded message's status: %+v", m)
	}
	if m := getMessage(t, w, scheduled); !m.BodyRetained {
		t.Fatalf("a message not sent yet lost its body: %+v", m)
	}
	var sealed int
	if err := db.Reader().QueryRow(context.Background(), "SELECT COUNT(*) FROM messages WHERE id = $1 AND body_sealed IS NOT NULL",
		delivered).Scan(&sealed); err != nil || sealed != 0 {
		t.Fatalf("the sealed body is still stored: %d %v", sealed, err)
	}

	status, _, body = api.call("GET", "/v1/audit-events?action=retention.shredded", owner, "", "")
	if status != 200 || !strings.Contains(string(body), `"message_body":"1"`) || strings.Contains(string(body), "HbA1c") ||
		strings.Contains(string(body), "pat@patient.example") {
		t.Fatalf("audit of the sweep: %d %s", status, body)
	}
}

type statusAnswer struct {
	Status         string     `json:"status"`
	BodyRetained   bool       `json:"body_retained"`
	BodyShreddedAt *time.Time `json:"body_shredded_at"`
	Recipients     []struct {
		State string `json:"state"`
	} `json:"recipients"`
}

func getMessage(t *testing.T, w mailWorld, id string) statusAnswer {
	t.Helper()
	status, _, body := w.api.call("GET", "/v1/messages/"+id, w.owner, "", "")
	var m statusAnswer
	if status != 200 || json.Unmarshal(body, &m) != nil || !strings.Contains(string(body), `"body_retained"`) {
		t.Fatalf("GET message %s: %d %s", id, status, body)
	}
	return m
}

func envValue(env []string, key string) string {
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	return ""
}
