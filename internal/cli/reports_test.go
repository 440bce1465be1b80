package cli_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// verifiedSender adds clinic.example to the world's account, publishes its
// records and verifies it.
func verifiedSender(t *testing.T, w mailWorld) {
	t.Helper()
	status, _, body := w.api.call("POST", "/v1/domains", w.owner, "application/json", `{"domain":"clinic.example"}`)
	var d domainAnswer
	if status != 201 || json.Unmarshal(body, &d) != nil {
		t.Fatalf("add domain: %d %s", status, body)
	}
	for _, r := range d.DNSRecords {
		if r.Required {
			if err := w.dns.Add(r.Name + ". 60 IN TXT " + quoteTXT(r.Value)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if status, _, body := w.api.call("POST", "/v1/domains/clinic.example/verify", w.owner, "", ""); status != 200 {
		t.Fatalf("verify: %d %s", status, body)
	}
}

type messageAnswer struct {
	ID         string    `json:"id"`
	Status     string    `json:"status"`
	SendAt     time.Time `json:"send_at"`
	Recipients []struct {
		Address string `json:"address"`
		State   string `json:"state"`
	} `json:"recipients"`
}

// sendJSON sends a message and returns its id.
func sendJSON(t *testing.T, w mailWorld, body string) string {
	t.Helper()
	status, _, out := w.api.call("POST", "/v1/messages", w.owner, "application/json", body)
	var acc messageAnswer
	if status != 202 || json.Unmarshal(out, &acc) != nil {
		t.Fatalf("send: %d %s", status, out)
	}
	return acc.ID
}

// waitForStatus polls a message until its status is want.
func waitForStatus(t *testing.T, w mailWorld, id, want string) messageAnswer {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var m messageAnswer
	for time.Now().Before(deadline) {
		_, _, body := w.api.call("GET", "/v1/messages/"+id, w.owner, "", "")
		if json.Unmarshal(body, &m) == nil && m.Status == want {
			return m
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("message %s: status %q, want %q", id, m.Status, want)
	return m
}

func TestReportsAndSchedulingThroughTheAPI(t *testing.T) {
	w := serveWithMail(t)
	verifiedSender(t, w)
	api, owner := w.api, w.owner
	from := time.Now().UTC().Add(-time.Hour).Truncate(time.Hour)
	to := from.Add(3 * time.Hour)
	rng := "from=" + url.QueryEscape(from.Format(time.RFC3339)) + "&to=" + url.QueryEscape(to.Format(time.RFC3339))

	// Two messages delivered now; the recipient address and the tags
	// need CSV escaping and formula defusing.
	first := sendJSON(t, w, `{"from":"reminders@clinic.example","to":["=1+2@patient.example","pat@patient.example"],"text":"x",
		"tags":["=HYPERLINK(\"x\")","a,b"]}`)
	second := sendJSON(t, w, `{"from":"reminders@clinic.example","to":["kim@patient.example"],"text":"x"}`)
	waitForStatus(t, w, first, "delivered")
	waitForStatus(t, w, second, "delivered")

	// A scheduled message is listed as such, moves when rescheduled, and
	// is delivered once moved to now; after that it can no longer move.
	sendAt := time.Now().UTC().Add(2 * time.Hour).Truncate(time.Second)
	later := sendJSON(t, w, `{"from":"reminders@clinic.example","to":["lee@patient.example"],"text":"x","send_at":"`+sendAt.Format(time.RFC3339)+`"}`)
	if status, _, body := api.call("GET", "/v1/messages?state=scheduled", owner, "", ""); status != 200 ||
		!strings.Contains(string(body), later) || strings.Contains(string(body), first) {
		t.Errorf("list scheduled: %d %s", status, body)
	}
	moved := sendAt.Add(24 * time.Hour)
	status, _, body := api.call("PATCH", "/v1/messages/"+later, owner, "application/json", `{"send_at":"`+moved.Format(time.RFC3339)+`"}`)
	var m messageAnswer
	if status != 200 || json.Unmarshal(body, &m) != nil || !m.SendAt.Equal(moved) || m.Status != "scheduled" {
		t.Fatalf("reschedule later: %d %s", status, body)
	}
	if status, _, body := api.call("PATCH", "/v1/messages/"+later, owner, "application/json", `{"send_at":"2000-01-01T00:00:00Z"}`); status != 200 {
		t.Fatalf("reschedule to now: %d %s", status, body)
	}
	waitForStatus(t, w, later, "delivered")
	w.waitForSink(t, 3) // the first message reached both its recipients in one transaction
	if status, _, body := api.call("PATCH", "/v1/messages/"+later, owner, "application/json", `{"send_at":"`+moved.Format(time.RFC3339)+`"}`); status != 409 {
		t.Errorf("reschedule a delivered message: %d %s", status, body)
	}

	// A scheduled message cancelled is never sent and cannot move.
	cancelled := sendJSON(t, w, `{"from":"reminders@clinic.example","to":["max@patient.example"],"text":"x","send_at":"`+sendAt.Format(time.RFC3339)+`"}`)
	if status, _, body := api.call("DELETE", "/v1/messages/"+cancelled, owner, "", ""); status != 204 {
		t.Fatalf("cancel a scheduled message: %d %s", status, body)
	}
	waitForStatus(t, w, cancelled, "cancelled")
	if status, _, _ := api.call("PATCH", "/v1/messages/"+cancelled, owner, "application/json", `{"send_at":"`+moved.Format(time.RFC3339)+`"}`); status != 409 {
		t.Errorf("reschedule a cancelled message: %d", status)
	}
	patchBad := []struct {
		name, body string
		want       int
	}{
		{"no send_at", `{}`, 422},
		{"too far ahead", `{"send_at":"` + time.Now().Add(40*24*time.Hour).UTC().Format(time.RFC3339) + `"}`, 422},
		{"unknown field", `{"send_at":"2030-01-01T00:00:00Z","subject":"x"}`, 400},
		{"not a date", `{"send_at":"tomorrow"}`, 422},
	}
	scheduled := sendJSON(t, w, `{"from":"reminders@clinic.example","to":["ann@patient.example"],"text":"x","send_at":"`+sendAt.Format(time.RFC3339)+`"}`)
	for _, c := range patchBad {
		if status, _, body := api.call("PATCH", "/v1/messages/"+scheduled, owner, "application/json", c.body); status != c.want {
			t.Errorf("reschedule with %s: %d %s, want %d", c.name, status, body, c.want)
		}
	}

	// The summary counts it all.
	status, _, body = api.call("GET", "/v1/reports/summary?group_by=none&"+rng, owner, "", "")
	var sum struct {
		Totals struct {
			Counts map[string]any `json:"counts"`
			Rates  map[string]float64
		} `json:"totals"`
		Data []json.RawMessage `json:"data"`
	}
	if status != 200 || json.Unmarshal(body, &sum) != nil || len(sum.Data) != 1 {
		t.Fatalf("summary: %d %s", status, body)
	}
	wantCounts := map[string]float64{"accepted": 5, "recipients": 6, "sent": 4, "delivered": 4, "cancelled": 1, "pending": 1}
	for k, v := range wantCounts {
		if sum.Totals.Counts[k] != v {
			t.Errorf("summary %s = %v, want %v", k, sum.Totals.Counts[k], v)
		}
	}
	if sum.Totals.Rates["delivery"] != 1 {
		t.Errorf("delivery rate %v", sum.Totals.Rates["delivery"])
	}

	// The CSV export: an attachment that parses, escapes and defuses.
	req := w.base + "/v1/reports/recipients.csv?" + rng
	status, header, body := api.call("GET", strings.TrimPrefix(req, w.base), owner, "", "")
	if status != 200 || !strings.HasPrefix(header.Get("Content-Type"), "text/csv") ||
		!strings.HasPrefix(header.Get("Content-Disposition"), "attachment;") {
		t.Fatalf("csv: %d %v", status, header)
	}
	records, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if err != nil || len(records) != 7 || records[0][0] != "message_id" || records[0][3] != "recipient" {
		t.Fatalf("csv does not parse as 1 header + 6 rows: %v\n%s", err, body)
	}
	var defused, tags bool
	for _, r := range records[1:] {
		if r[0] == first && r[3] == "'=1+2@patient.example" {
			defused = true
		}
		if r[0] == first && r[11] == `["=HYPERLINK(\"x\")","a,b"]` {
			tags = true
		}
		for _, cell := range r {
			if cell != "" && strings.ContainsRune("=+-@", rune(cell[0])) {
				t.Errorf("a cell starts with a formula character: %q", cell)
			}
		}
	}
	if !defused || !tags {
		t.Errorf("formula defusing %v, tags cell %v:\n%s", defused, tags, body)
	}

	// JSON pages of two rows cover the same six rows exactly once.
	seen := map[string]int{}
	cursor := ""
	for pages := 0; pages < 10; pages++ {
		path := "/v1/reports/recipients?limit=2&" + rng
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		status, _, body := api.call("GET", path, owner, "", "")
		var page struct {
			Data []struct {
				MessageID string `json:"message_id"`
				Recipient string `json:"recipient"`
			} `json:"data"`
			NextCursor *string `json:"next_cursor"`
		}
		if status != 200 || json.Unmarshal(body, &page) != nil {
			t.Fatalf("rows page: %d %s", status, body)
		}
		for _, r := range page.Data {
			seen[r.MessageID+" "+r.Recipient]++
		}
		if page.NextCursor == nil {
			break
		}
		cursor = *page.NextCursor
	}
	if len(seen) != 6 {
		t.Errorf("pages covered %d rows, want 6: %v", len(seen), seen)
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("row %s seen %d times", k, n)
		}
	}

	// Bad input: a 400 problem naming the parameter.
	long := "from=2026-01-01T00:00:00Z&to=2026-06-01T00:00:00Z"
	bad := []struct {
		name, path, field string
	}{
		{"missing from", "/v1/reports/summary?to=2026-01-02T00:00:00Z", "from"},
		{"not RFC 3339", "/v1/reports/summary?from=2026-01-01&to=2026-01-02T00:00:00Z", "from"},
		{"to before from", "/v1/reports/summary?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", "to"},
		{"range over 93 days", "/v1/reports/summary?" + long, "to"},
		{"range over 93 days in the export", "/v1/reports/recipients.csv?" + long, "to"},
		{"unknown parameter", "/v1/reports/summary?" + rng + "&status=delivered", "status"},
		{"unknown granularity", "/v1/reports/summary?" + rng + "&group_by=week", "group_by"},
		{"limit too large", "/v1/reports/recipients?" + rng + "&limit=5000", "limit"},
		{"bad cursor", "/v1/reports/recipients?" + rng + "&cursor=xyz", "cursor"},
		{"bad domain", "/v1/reports/summary?" + rng + "&domain=not%20a%20domain", "domain"},
		{"repeated parameter", "/v1/reports/summary?" + rng + "&tag=a&tag=b", "tag"},
		{"unknown state filter", "/v1/messages?state=lost", "state"},
	}
	for _, c := range bad {
		status, header, body := api.call("GET", c.path, owner, "", "")
		var p struct {
			Errors []struct{ Field string } `json:"errors"`
		}
		_ = json.Unmarshal(body, &p)
		if status != 400 || header.Get("Content-Type") != "application/problem+json" || len(p.Errors) == 0 || p.Errors[0].Field != c.field {
			t.Errorf("%s: %d %s, want 400 naming %s", c.name, status, body, c.field)
		}
	}

	// Another account counts and exports none of it, nor moves it.
	code, out, errOut := run(t, w.env, "admin", "bootstrap", "--force", "--account-name", "Other", "--owner-email", "o@other.example")
	if code != 0 {
		t.Fatalf("second account: %s %s", out, errOut)
	}
	other := parseCreds(out)
	otherKey := other["client_id"] + ":" + other["client_secret"]
	if status, _, body := api.call("GET", "/v1/reports/summary?group_by=none&"+rng, otherKey, "", ""); status != 200 ||
		!strings.Contains(string(body), `"accepted":0,`) || strings.Contains(string(body), `"accepted":5`) {
		t.Errorf("another account's summary: %d %s", status, body)
	}
	if status, _, body := api.call("GET", "/v1/reports/recipients.csv?"+rng, otherKey, "", ""); status != 200 || strings.Count(string(body), "\n") != 1 {
		t.Errorf("another account's export: %d %s", status, body)
	}
	if status, _, _ := api.call("PATCH", "/v1/messages/"+scheduled, otherKey, "application/json", `{"send_at":"2000-01-01T00:00:00Z"}`); status != 404 {
		t.Errorf("another account reschedules: %d", status)
	}

	// An export longer than one internal page (1,000 rows): 1,100 more
	// scheduled recipients, every row exactly once.
	var batch []string
	for i := range 11 {
		rcpts := make([]string, 100)
		for j := range rcpts {
			rcpts[j] = `"p` + strconv.Itoa(i*100+j) + `@patient.example"`
		}
		batch = append(batch, `{"from":"reminders@clinic.example","to":[`+strings.Join(rcpts, ",")+`],"text":"x","send_at":"`+
			sendAt.Format(time.RFC3339)+`"}`)
	}
	if status, _, body := api.call("POST", "/v1/messages/batch", owner, "application/json", `{"messages":[`+strings.Join(batch, ",")+`]}`); status != 200 ||
		strings.Count(string(body), `"status":202`) != 11 {
		t.Fatalf("batch: %d %.300s", status, body)
	}
	_, _, body = api.call("GET", "/v1/reports/recipients.csv?"+rng, owner, "", "")
	records, err = csv.NewReader(bytes.NewReader(body)).ReadAll()
	if err != nil || len(records) != 1+6+1100 {
		t.Fatalf("long export: %d records, %v", len(records), err)
	}
	rows := map[string]bool{}
	for _, r := range records[1:] {
		rows[r[0]+" "+r[3]] = true
	}
	if len(rows) != 6+1100 {
		t.Errorf("long export: %d distinct rows, want 1106", len(rows))
	}
}
